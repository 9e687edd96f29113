// The proxy SmarterTrack uses to call an external provider, written as `wsdl.exe` generates it from
// tests/dotnet/reference/ExternalProvider.asmx.wsdl (SOAP 1.1 binding, document/literal, wrapped), with the
// data types shaped as in SmarterTrack.Connector: classes with public fields and List<string>.
//
// Left out on purpose: the Begin/End and event-based *Async methods wsdl.exe also emits. They go through
// the same Invoke path and put the same bytes on the wire.
//
// SOAP 1.2 is the same proxy with SoapVersion = SoapProtocolVersion.Soap12.

using System.Collections.Generic;
using System.Web.Services;
using System.Web.Services.Description;
using System.Web.Services.Protocols;
using System.Xml.Serialization;

namespace SmarterTrack.Connector
{
    [System.CodeDom.Compiler.GeneratedCodeAttribute("wsdl", "4.0.30319.33440")]
    [System.Diagnostics.DebuggerStepThroughAttribute()]
    [System.ComponentModel.DesignerCategoryAttribute("code")]
    [WebServiceBindingAttribute(Name = "ExternalProviderServiceSoap", Namespace = "http://tempuri.org/")]
    public partial class ExternalProviderService : SoapHttpClientProtocol
    {
        public ExternalProviderService()
        {
            this.Url = "http://127.0.0.1:8200/ExternalProvider.asmx";
        }

        [SoapDocumentMethodAttribute("http://tempuri.org/Authenticate", RequestNamespace = "http://tempuri.org/", ResponseNamespace = "http://tempuri.org/", Use = SoapBindingUse.Literal, ParameterStyle = SoapParameterStyle.Wrapped)]
        public ExternalLoginProviderResult Authenticate(ExternalLoginProviderInputs inputs)
        {
            object[] results = this.Invoke("Authenticate", new object[] { inputs });
            return ((ExternalLoginProviderResult)(results[0]));
        }

        [SoapDocumentMethodAttribute("http://tempuri.org/GetSignInCookieInfo", RequestNamespace = "http://tempuri.org/", ResponseNamespace = "http://tempuri.org/", Use = SoapBindingUse.Literal, ParameterStyle = SoapParameterStyle.Wrapped)]
        public ExternalLoginProviderResult GetSignInCookieInfo(ExternalLoginProviderInputs inputs)
        {
            object[] results = this.Invoke("GetSignInCookieInfo", new object[] { inputs });
            return ((ExternalLoginProviderResult)(results[0]));
        }

        [SoapDocumentMethodAttribute("http://tempuri.org/GetCustomFieldOptions", RequestNamespace = "http://tempuri.org/", ResponseNamespace = "http://tempuri.org/", Use = SoapBindingUse.Literal, ParameterStyle = SoapParameterStyle.Wrapped)]
        public ExternalCustomFieldProviderResult GetCustomFieldOptions(ExternalCustomFieldProviderInputs inputs)
        {
            object[] results = this.Invoke("GetCustomFieldOptions", new object[] { inputs });
            return ((ExternalCustomFieldProviderResult)(results[0]));
        }

        [SoapDocumentMethodAttribute("http://tempuri.org/GetUserDetails", RequestNamespace = "http://tempuri.org/", ResponseNamespace = "http://tempuri.org/", Use = SoapBindingUse.Literal, ParameterStyle = SoapParameterStyle.Wrapped)]
        public ExternalUserInfoProviderResult GetUserDetails(ExternalUserInfoProviderInputs inputs)
        {
            object[] results = this.Invoke("GetUserDetails", new object[] { inputs });
            return ((ExternalUserInfoProviderResult)(results[0]));
        }

        [SoapDocumentMethodAttribute("http://tempuri.org/StartTicket", RequestNamespace = "http://tempuri.org/", ResponseNamespace = "http://tempuri.org/", Use = SoapBindingUse.Literal, ParameterStyle = SoapParameterStyle.Wrapped)]
        public ExternalTicketProviderResult StartTicket(ExternalTicketProviderInputs inputs)
        {
            object[] results = this.Invoke("StartTicket", new object[] { inputs });
            return ((ExternalTicketProviderResult)(results[0]));
        }

        [SoapDocumentMethodAttribute("http://tempuri.org/StartChat", RequestNamespace = "http://tempuri.org/", ResponseNamespace = "http://tempuri.org/", Use = SoapBindingUse.Literal, ParameterStyle = SoapParameterStyle.Wrapped)]
        public ExternalChatProviderResult StartChat(ExternalChatProviderInputs inputs)
        {
            object[] results = this.Invoke("StartChat", new object[] { inputs });
            return ((ExternalChatProviderResult)(results[0]));
        }

        [SoapDocumentMethodAttribute("http://tempuri.org/NotifyEventFired", RequestNamespace = "http://tempuri.org/", ResponseNamespace = "http://tempuri.org/", Use = SoapBindingUse.Literal, ParameterStyle = SoapParameterStyle.Wrapped)]
        public ExternalEventProviderResult NotifyEventFired(ExternalEventProviderInputs inputs)
        {
            object[] results = this.Invoke("NotifyEventFired", new object[] { inputs });
            return ((ExternalEventProviderResult)(results[0]));
        }
    }

    // Each input is "name=value"; a null item goes on the wire as <string xsi:nil="true" />.
    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalLoginProviderInputs
    {
        public List<string> InputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalLoginProviderResult
    {
        public bool Success;
        public string Message;
        public List<string> OutputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalCustomFieldProviderInputs
    {
        public List<string> InputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalCustomFieldProviderResult
    {
        public bool Success;
        public string Message;
        public List<string> OutputVariables;
        public List<ExternalCustomFieldData> CustomFieldDataItems;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalCustomFieldData
    {
        public string CustomFieldName;
        public bool DisplayWithInformationLookup;
        public bool ChangeListOptions;
        public List<string> ListOptions;
        public bool ChangeRequired;
        public bool NewRequiredValue;
        public bool ChangeVisible;
        public bool NewVisibleValue;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalUserInfoProviderInputs
    {
        public List<string> InputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalUserInfoProviderResult
    {
        public bool Success;
        public string Message;
        public string UserInfoHtml;
        public List<string> OutputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalTicketProviderInputs
    {
        public List<string> InputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalTicketProviderResult
    {
        public bool Success;
        public string Message;
        public List<string> OutputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalChatProviderInputs
    {
        public List<string> InputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalChatProviderResult
    {
        public bool Success;
        public string Message;
        public List<string> OutputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalEventProviderInputs
    {
        public List<string> InputVariables;
    }

    [XmlTypeAttribute(Namespace = "http://tempuri.org/")]
    public class ExternalEventProviderResult
    {
        public bool Success;
        public string Message;
    }
}
