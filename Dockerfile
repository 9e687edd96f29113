# ssobridge: SmarterTrack external providers backed by Active Directory / LDAP.
#   docker build -t ssobridge .
#   docker run -d -p 8290:8290 -v /etc/ssobridge:/etc/ssobridge:ro \
#     -e SSOBRIDGE_WEB_SERVICE_PASSWORD=... -e SSOBRIDGE_BIND_PASSWORD=... ssobridge
# /etc/ssobridge holds ssobridge.toml (listen = "0.0.0.0:8290", with tls_cert/tls_key or
# allow_plaintext_http = true behind a TLS proxy), the directory CA file, and optionally a .env with
# the secrets (mode 0640, readable by uid 10001), and [server] data_dir = "/var/lib/ssobridge" (the
# config folder is read-only here; state and a PKCS#8 copy of a PKCS#1 tls_key go there). See docs/deployment.md.
FROM python:3.11-slim

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ssobridge

WORKDIR /opt/ssobridge
COPY pyproject.toml README.md ./
COPY ssobridge ./ssobridge
RUN pip install --no-cache-dir . && rm -rf /opt/ssobridge/build \
    && mkdir -p /var/lib/ssobridge && chown ssobridge /var/lib/ssobridge
# data_dir and the event outbox live here ([events] database = "/var/lib/ssobridge/events.db"): keep it on a volume.
VOLUME /var/lib/ssobridge

USER ssobridge
ENV SSOBRIDGE_CONFIG=/etc/ssobridge/ssobridge.toml \
    PYTHONUNBUFFERED=1
EXPOSE 8290
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 CMD ["ssobridge", "healthcheck"]
ENTRYPOINT ["ssobridge"]
CMD ["serve"]
