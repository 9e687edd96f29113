// Command line around the SmarterTrack proxy (SmarterTrackClient.cs): plays SmarterTrack in the tests.
// Output is JSON, one object per call; the Python side is tests/support/dotnet_client.py.
//
//   mono client.exe --url URL --op OP [--soap 11|12] [--var NAME=VALUE]... [--nil-item] [--vars-stdin]
//                   [--null-list] [--null-inputs] [--repeat N] [--timing] [--timeout MS]
//                   [--ca-file PEM | --trust-all]
//   mono client.exe --batch [--url URL] [--timing] [--timeout MS] [--ca-file PEM | --trust-all]
//
// Exit codes: 0 result printed, 2 usage error, 3 SOAP fault / HTTP error / transport error (printed as
// {"Fault": ..., "HttpStatus": n|null, ...}). See README.md in this directory.

using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Reflection;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Web.Services.Protocols;
using SmarterTrack.Connector;

namespace SsoBridgeTests
{
    class UsageException : Exception
    {
        public UsageException(string message) : base(message) { }
    }

    // The generated proxy, plus a record of the HTTP status of the last response: SoapException does not
    // carry it. Overriding these two hooks does not change what goes on the wire.
    class RecordingService : ExternalProviderService
    {
        public int? LastHttpStatus;

        protected override WebResponse GetWebResponse(WebRequest request)
        {
            LastHttpStatus = null;
            try
            {
                WebResponse response = base.GetWebResponse(request);
                Record(response);
                return response;
            }
            catch (WebException e)
            {
                Record(e.Response);
                throw;
            }
        }

        void Record(WebResponse response)
        {
            var http = response as HttpWebResponse;
            if (http != null) LastHttpStatus = (int)http.StatusCode;
        }
    }

    // One call as the command line or a batch line describes it.
    class CallSpec
    {
        public string Url;
        public string Op;
        public string Soap = "11";
        public List<string> Vars = new List<string>();  // null: InputVariables omitted
        public bool NullInputs;                          // the whole inputs element omitted
        public int Repeat = 1;
    }

    static class Program
    {
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false);
        static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);
        static readonly Dictionary<string, RecordingService> Proxies = new Dictionary<string, RecordingService>();
        static int TimeoutMs = 100000;  // SoapHttpClientProtocol's default
        static bool Timing;

        static int Main(string[] args)
        {
            var stdout = new StreamWriter(Console.OpenStandardOutput(), Utf8);
            stdout.NewLine = "\n";
            try
            {
                return Run(args, stdout);
            }
            catch (UsageException e)
            {
                Console.Error.WriteLine("usage error: " + e.Message);
                return 2;
            }
            finally
            {
                stdout.Flush();
                RemoveTrustDirectory();
            }
        }

        static int Run(string[] args, TextWriter stdout)
        {
            var spec = new CallSpec();
            bool batch = false;
            string caFile = null;
            bool trustAll = false;
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                if (spec.Vars == null && (a == "--var" || a == "--nil-item" || a == "--vars-stdin"))
                    throw new UsageException("--null-list cannot be combined with variables");
                switch (a)
                {
                    case "--url": spec.Url = Value(args, ref i); break;
                    case "--op": spec.Op = Value(args, ref i); break;
                    case "--soap": spec.Soap = Value(args, ref i); break;
                    case "--var": spec.Vars.Add(Value(args, ref i)); break;
                    case "--nil-item": spec.Vars.Add(null); break;
                    case "--vars-stdin": spec.Vars.AddRange(ReadStdinLines()); break;
                    case "--null-list": spec.Vars = null; break;
                    case "--null-inputs": spec.NullInputs = true; break;
                    case "--repeat": spec.Repeat = PositiveInt(Value(args, ref i), a); break;
                    case "--timeout": TimeoutMs = PositiveInt(Value(args, ref i), a); break;
                    case "--timing": Timing = true; break;
                    case "--batch": batch = true; break;
                    case "--ca-file":
                    case "--insecure-ca": caFile = Value(args, ref i); break;
                    case "--trust-all": trustAll = true; break;
                    default: throw new UsageException("unknown argument " + a);
                }
            }
            ConfigureTls(caFile, trustAll);
            if (batch)
            {
                RunBatch(spec.Url, stdout);
                return 0;
            }
            CheckSpec(spec);
            Dictionary<string, object> result = null;
            var elapsed = new List<double>();
            for (int n = 0; n < spec.Repeat; n++)
            {
                var watch = Stopwatch.StartNew();
                result = Call(spec);
                elapsed.Add(watch.Elapsed.TotalMilliseconds);
                if (result.ContainsKey("Fault")) break;
            }
            if (Timing) result["ElapsedMs"] = elapsed;
            stdout.WriteLine(Json.Write(result));
            return result.ContainsKey("Fault") ? 3 : 0;
        }

        // One JSON request per stdin line, one JSON result per stdout line, flushed after each.
        // {"op": "Authenticate", "soap": "11", "vars": ["authPW=x", null], "url": optional,
        //  "nullInputs": optional bool, "repeat": optional int}; "vars": null omits InputVariables.
        static void RunBatch(string defaultUrl, TextWriter stdout)
        {
            var stdin = new StreamReader(Console.OpenStandardInput(), StrictUtf8);
            string line;
            while ((line = stdin.ReadLine()) != null)
            {
                if (line.Trim().Length == 0) continue;
                Dictionary<string, object> result;
                try
                {
                    var spec = SpecFromJson(line, defaultUrl);
                    var elapsed = new List<double>();
                    result = null;
                    for (int n = 0; n < spec.Repeat; n++)
                    {
                        var watch = Stopwatch.StartNew();
                        result = Call(spec);
                        elapsed.Add(watch.Elapsed.TotalMilliseconds);
                        if (result.ContainsKey("Fault")) break;
                    }
                    if (Timing) result["ElapsedMs"] = elapsed;
                }
                catch (UsageException e)
                {
                    result = new Dictionary<string, object> { { "UsageError", e.Message } };
                }
                stdout.WriteLine(Json.Write(result));
                stdout.Flush();
            }
        }

        static CallSpec SpecFromJson(string line, string defaultUrl)
        {
            object parsed;
            try { parsed = Json.Parse(line); }
            catch (FormatException e) { throw new UsageException("bad JSON line: " + e.Message); }
            var o = parsed as Dictionary<string, object>;
            if (o == null) throw new UsageException("a batch line must be a JSON object");
            var spec = new CallSpec { Url = defaultUrl };
            foreach (var kv in o)
            {
                switch (kv.Key)
                {
                    case "url": spec.Url = kv.Value as string; break;
                    case "op": spec.Op = kv.Value as string; break;
                    case "soap": spec.Soap = Convert.ToString(kv.Value, System.Globalization.CultureInfo.InvariantCulture); break;
                    case "nullInputs": spec.NullInputs = kv.Value is bool && (bool)kv.Value; break;
                    case "repeat":
                        if (!(kv.Value is double) || (double)kv.Value < 1) throw new UsageException("repeat must be a positive number");
                        spec.Repeat = (int)(double)kv.Value;
                        break;
                    case "vars":
                        if (kv.Value == null) { spec.Vars = null; break; }
                        var list = kv.Value as List<object>;
                        if (list == null) throw new UsageException("vars must be a list or null");
                        spec.Vars = new List<string>();
                        foreach (var item in list)
                        {
                            if (item != null && !(item is string)) throw new UsageException("vars items must be strings or null");
                            spec.Vars.Add((string)item);
                        }
                        break;
                    default: throw new UsageException("unknown key " + kv.Key);
                }
            }
            CheckSpec(spec);
            return spec;
        }

        static void CheckSpec(CallSpec spec)
        {
            if (string.IsNullOrEmpty(spec.Url)) throw new UsageException("--url (or \"url\") is required");
            if (string.IsNullOrEmpty(spec.Op)) throw new UsageException("--op (or \"op\") is required");
            if (spec.Soap != "11" && spec.Soap != "12") throw new UsageException("soap must be 11 or 12");
        }

        static RecordingService Proxy(CallSpec spec)
        {
            // One proxy per URL and SOAP version, kept for the whole process; HttpWebRequest pools the
            // connections per host, so successive calls reuse one keep-alive connection as SmarterTrack does.
            string key = spec.Soap + " " + spec.Url;
            RecordingService proxy;
            if (!Proxies.TryGetValue(key, out proxy))
            {
                proxy = new RecordingService
                {
                    Url = spec.Url,
                    Timeout = TimeoutMs,
                    SoapVersion = spec.Soap == "12" ? SoapProtocolVersion.Soap12 : SoapProtocolVersion.Soap11,
                };
                Proxies[key] = proxy;
            }
            return proxy;
        }

        static Dictionary<string, object> Call(CallSpec spec)
        {
            var proxy = Proxy(spec);
            proxy.LastHttpStatus = null;
            List<string> vars = spec.Vars == null ? null : new List<string>(spec.Vars);
            try
            {
                object result;
                switch (spec.Op)
                {
                    case "Authenticate":
                        result = proxy.Authenticate(spec.NullInputs ? null : new ExternalLoginProviderInputs { InputVariables = vars });
                        break;
                    case "GetSignInCookieInfo":
                        result = proxy.GetSignInCookieInfo(spec.NullInputs ? null : new ExternalLoginProviderInputs { InputVariables = vars });
                        break;
                    case "GetCustomFieldOptions":
                        result = proxy.GetCustomFieldOptions(spec.NullInputs ? null : new ExternalCustomFieldProviderInputs { InputVariables = vars });
                        break;
                    case "StartTicket":
                        result = proxy.StartTicket(spec.NullInputs ? null : new ExternalTicketProviderInputs { InputVariables = vars });
                        break;
                    case "StartChat":
                        result = proxy.StartChat(spec.NullInputs ? null : new ExternalChatProviderInputs { InputVariables = vars });
                        break;
                    case "GetUserDetails":
                        result = proxy.GetUserDetails(spec.NullInputs ? null : new ExternalUserInfoProviderInputs { InputVariables = vars });
                        break;
                    case "NotifyEventFired":
                        result = proxy.NotifyEventFired(spec.NullInputs ? null : new ExternalEventProviderInputs { InputVariables = vars });
                        break;
                    default:
                        throw new UsageException("unknown op " + spec.Op);
                }
                if (result == null)
                    // The response had no <OpResult> element: ASMX only does that for a null return.
                    return new Dictionary<string, object> { { "Result", null }, { "HttpStatus", proxy.LastHttpStatus } };
                return (Dictionary<string, object>)ToJsonValue(result);
            }
            catch (UsageException)
            {
                throw;
            }
            catch (Exception e)
            {
                return Fault(e, proxy.LastHttpStatus);
            }
        }

        static Dictionary<string, object> Fault(Exception e, int? httpStatus)
        {
            var fault = new Dictionary<string, object>();
            fault["Fault"] = e.Message;
            fault["HttpStatus"] = httpStatus;
            fault["ExceptionType"] = e.GetType().FullName;
            var soap = e as SoapException;
            if (soap != null)
            {
                fault["FaultCode"] = Clark(soap.Code);
                if (soap.SubCode != null) fault["FaultSubCode"] = Clark(soap.SubCode.Code);
                if (!string.IsNullOrEmpty(soap.Actor)) fault["FaultActor"] = soap.Actor;
                if (soap.Detail != null) fault["FaultDetail"] = soap.Detail.OuterXml;
            }
            var web = e as WebException;
            if (web != null)
            {
                fault["WebExceptionStatus"] = web.Status.ToString();
                if (web.Response != null)
                {
                    try
                    {
                        using (var reader = new StreamReader(web.Response.GetResponseStream(), Utf8))
                            fault["ResponseBody"] = reader.ReadToEnd();
                    }
                    catch (Exception) { }
                }
            }
            var inner = new List<string>();
            for (var x = e.InnerException; x != null; x = x.InnerException)
                inner.Add(x.GetType().FullName + ": " + x.Message);
            if (inner.Count > 0) fault["Inner"] = inner;
            return fault;
        }

        static string Clark(System.Xml.XmlQualifiedName name)
        {
            if (name == null) return null;
            return string.IsNullOrEmpty(name.Namespace) ? name.Name : "{" + name.Namespace + "}" + name.Name;
        }

        // A result object as JSON: its public fields in declaration order, lists as arrays.
        static object ToJsonValue(object value)
        {
            if (value == null || value is string || value is bool) return value;
            var list = value as IList;
            if (list != null)
            {
                var items = new List<object>();
                foreach (var item in list) items.Add(ToJsonValue(item));
                return items;
            }
            var o = new Dictionary<string, object>();
            foreach (var field in value.GetType().GetFields(BindingFlags.Public | BindingFlags.Instance).OrderBy(f => f.MetadataToken))
                o[field.Name] = ToJsonValue(field.GetValue(value));
            return o;
        }

        // --ca-file: the server's certificate must chain to this CA (and no other) and name the host.
        // Mono's managed X509Chain cannot decode EC keys, so the chain is built by Mono's TLS stack (btls)
        // from a private trust store holding only the given CA: XDG_CONFIG_HOME points at a temporary
        // directory for this process, so the user's own Mono store is neither read nor written.
        static void ConfigureTls(string caFile, bool trustAll)
        {
            if (trustAll)
            {
                ServicePointManager.ServerCertificateValidationCallback = (sender, cert, chain, errors) => true;
                return;
            }
            if (caFile == null) return;
            byte[] der = LoadCertificate(caFile);
            string thumbprint = new X509Certificate2(der).Thumbprint;
            TrustDirectory = Path.Combine(Path.GetTempPath(), "ssobridge-mono-trust-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(TrustDirectory);
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", TrustDirectory);
            Mono.Security.X509.X509StoreManager.NewCurrentUser.TrustedRoot.Import(new Mono.Security.X509.X509Certificate(der));
            ServicePointManager.ServerCertificateValidationCallback = (sender, cert, chain, errors) =>
            {
                if (cert == null || chain == null || chain.ChainElements.Count == 0) return false;
                if (chain.ChainElements[chain.ChainElements.Count - 1].Certificate.Thumbprint != thumbprint) return false;
                if ((errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) != SslPolicyErrors.None) return false;
                if (errors == SslPolicyErrors.None) return true;
                // Mono's name check ignores IP addresses in subjectAltName; .NET Framework honours them.
                var request = sender as HttpWebRequest;
                IPAddress ip;
                return request != null && IPAddress.TryParse(request.RequestUri.Host.Trim('[', ']'), out ip)
                    && CertificateHasIpAddress(new X509Certificate2(cert), ip);
            };
        }

        static string TrustDirectory;

        static void RemoveTrustDirectory()
        {
            if (TrustDirectory == null) return;
            try { Directory.Delete(TrustDirectory, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        // Whether the certificate's subjectAltName lists this IP address (GeneralName [7] iPAddress).
        static bool CertificateHasIpAddress(X509Certificate2 cert, IPAddress ip)
        {
            byte[] wanted = ip.GetAddressBytes();
            foreach (X509Extension extension in cert.Extensions)
            {
                if (extension.Oid.Value != "2.5.29.17") continue;
                byte[] d = extension.RawData;
                int i = 0;
                if (d.Length < 2 || d[i++] != 0x30) return false;
                int end = ReadDerLength(d, ref i);
                end += i;
                while (i < end && i < d.Length)
                {
                    byte tag = d[i++];
                    int length = ReadDerLength(d, ref i);
                    if (tag == 0x87 && length == wanted.Length)
                    {
                        bool same = true;
                        for (int k = 0; k < length; k++) same &= d[i + k] == wanted[k];
                        if (same) return true;
                    }
                    i += length;
                }
            }
            return false;
        }

        static int ReadDerLength(byte[] d, ref int i)
        {
            int first = d[i++];
            if (first < 0x80) return first;
            int length = 0;
            for (int k = 0; k < (first & 0x7f); k++) length = (length << 8) | d[i++];
            return length;
        }

        // The first certificate of a PEM file, or a DER file, as DER bytes.
        static byte[] LoadCertificate(string path)
        {
            byte[] raw;
            try { raw = File.ReadAllBytes(path); }
            catch (IOException error) { throw new UsageException("cannot read " + path + ": " + error.Message); }
            string text = Encoding.ASCII.GetString(raw);
            const string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
            int b = text.IndexOf(begin, StringComparison.Ordinal);
            if (b < 0) return raw;
            int e = text.IndexOf(end, b, StringComparison.Ordinal);
            if (e < 0) throw new UsageException("no END CERTIFICATE in " + path);
            return Convert.FromBase64String(text.Substring(b + begin.Length, e - b - begin.Length));
        }

        // Variables one per line, UTF-8, so that non-ASCII and shell metacharacters need no quoting.
        // "\r\n" and "\n" both end a line; a final newline does not add an empty variable.
        static List<string> ReadStdinLines()
        {
            string text = new StreamReader(Console.OpenStandardInput(), StrictUtf8).ReadToEnd();
            var lines = text.Split('\n').Select(l => l.EndsWith("\r") ? l.Substring(0, l.Length - 1) : l).ToList();
            if (lines.Count > 0 && lines[lines.Count - 1].Length == 0) lines.RemoveAt(lines.Count - 1);
            return lines;
        }

        static string Value(string[] args, ref int i)
        {
            if (i + 1 >= args.Length) throw new UsageException(args[i] + " needs a value");
            return args[++i];
        }

        static int PositiveInt(string s, string option)
        {
            int n;
            if (!int.TryParse(s, out n) || n < 1) throw new UsageException(option + " needs a positive integer");
            return n;
        }
    }

    // Just enough JSON: objects, arrays, strings, numbers (as double), true/false/null.
    static class Json
    {
        public static string Write(object value)
        {
            var sb = new StringBuilder();
            Write(sb, value);
            return sb.ToString();
        }

        static void Write(StringBuilder sb, object value)
        {
            if (value == null) { sb.Append("null"); return; }
            if (value is bool) { sb.Append((bool)value ? "true" : "false"); return; }
            if (value is string) { WriteString(sb, (string)value); return; }
            if (value is int) { sb.Append(((int)value).ToString(System.Globalization.CultureInfo.InvariantCulture)); return; }
            if (value is double) { sb.Append(((double)value).ToString("R", System.Globalization.CultureInfo.InvariantCulture)); return; }
            var dict = value as IDictionary<string, object>;
            if (dict != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (var kv in dict)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    WriteString(sb, kv.Key);
                    sb.Append(": ");
                    Write(sb, kv.Value);
                }
                sb.Append('}');
                return;
            }
            var list = value as IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (var item in list)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    Write(sb, item);
                }
                sb.Append(']');
                return;
            }
            throw new ArgumentException("cannot write " + value.GetType() + " as JSON");
        }

        static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        bool pairedSurrogate = char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]);
                        if (pairedSurrogate) { sb.Append(c).Append(s[++i]); }
                        // Control characters, lone surrogates (not encodable as UTF-8) and the two JavaScript
                        // line separators are escaped; everything else is written as UTF-8.
                        else if (c < 0x20 || char.IsSurrogate(c) || c == '\u2028' || c == '\u2029' || c == '\u007f')
                            sb.AppendFormat("\\u{0:x4}", (int)c);
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }

        public static object Parse(string text)
        {
            int i = 0;
            object value = ParseValue(text, ref i);
            SkipSpace(text, ref i);
            if (i != text.Length) throw new FormatException("trailing characters at " + i);
            return value;
        }

        static void SkipSpace(string t, ref int i)
        {
            while (i < t.Length && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n')) i++;
        }

        static object ParseValue(string t, ref int i)
        {
            SkipSpace(t, ref i);
            if (i >= t.Length) throw new FormatException("unexpected end");
            char c = t[i];
            if (c == '{')
            {
                var o = new Dictionary<string, object>();
                i++;
                SkipSpace(t, ref i);
                if (i < t.Length && t[i] == '}') { i++; return o; }
                while (true)
                {
                    SkipSpace(t, ref i);
                    if (i >= t.Length || t[i] != '"') throw new FormatException("expected a key at " + i);
                    string key = ParseString(t, ref i);
                    SkipSpace(t, ref i);
                    Expect(t, ref i, ':');
                    o[key] = ParseValue(t, ref i);
                    SkipSpace(t, ref i);
                    if (i < t.Length && t[i] == ',') { i++; continue; }
                    Expect(t, ref i, '}');
                    return o;
                }
            }
            if (c == '[')
            {
                var a = new List<object>();
                i++;
                SkipSpace(t, ref i);
                if (i < t.Length && t[i] == ']') { i++; return a; }
                while (true)
                {
                    a.Add(ParseValue(t, ref i));
                    SkipSpace(t, ref i);
                    if (i < t.Length && t[i] == ',') { i++; continue; }
                    Expect(t, ref i, ']');
                    return a;
                }
            }
            if (c == '"') return ParseString(t, ref i);
            if (Literal(t, ref i, "true")) return true;
            if (Literal(t, ref i, "false")) return false;
            if (Literal(t, ref i, "null")) return null;
            int start = i;
            while (i < t.Length && "+-0123456789.eE".IndexOf(t[i]) >= 0) i++;
            double d;
            if (i == start || !double.TryParse(t.Substring(start, i - start), System.Globalization.NumberStyles.Float,
                                               System.Globalization.CultureInfo.InvariantCulture, out d))
                throw new FormatException("unexpected character at " + start);
            return d;
        }

        static bool Literal(string t, ref int i, string word)
        {
            if (string.CompareOrdinal(t, i, word, 0, word.Length) != 0) return false;
            i += word.Length;
            return true;
        }

        static void Expect(string t, ref int i, char c)
        {
            if (i >= t.Length || t[i] != c) throw new FormatException("expected '" + c + "' at " + i);
            i++;
        }

        static string ParseString(string t, ref int i)
        {
            var sb = new StringBuilder();
            i++;  // opening quote
            while (true)
            {
                if (i >= t.Length) throw new FormatException("unterminated string");
                char c = t[i++];
                if (c == '"') return sb.ToString();
                if (c != '\\') { sb.Append(c); continue; }
                if (i >= t.Length) throw new FormatException("unterminated escape");
                char e = t[i++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (i + 4 > t.Length) throw new FormatException("short \\u escape");
                        sb.Append((char)Convert.ToInt32(t.Substring(i, 4), 16));
                        i += 4;
                        break;
                    default: throw new FormatException("bad escape \\" + e);
                }
            }
        }
    }
}
