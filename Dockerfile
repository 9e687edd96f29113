# syntax=docker/dockerfile:1
# (RUN --mount below needs BuildKit, the default builder since Docker 23.)
# ssobridge: SmarterTrack external providers backed by Active Directory / LDAP.
#   docker build -t ssobridge .
#   docker run -d -p 8290:8290 -v /etc/ssobridge:/etc/ssobridge:ro -v ssobridge-data:/var/lib/ssobridge \
#     -e SSOBRIDGE_WEB_SERVICE_PASSWORD_FILE=/run/secrets/st -e SSOBRIDGE_BIND_PASSWORD_FILE=/run/secrets/bind ssobridge
# /etc/ssobridge holds ssobridge.toml (listen = "0.0.0.0:8290", with tls_cert/tls_key or
# allow_plaintext_http = true behind a TLS proxy), the directory CA file, and optionally a .env with
# the secrets (mode 0640, readable by uid 10001); ${NAME} also reads the file NAME_FILE names (Docker and
# Kubernetes secrets). State (lockout shield, service-account guard, the event outbox, a PKCS#8 copy of a
# PKCS#1 tls_key) goes to /var/lib/ssobridge ($SSOBRIDGE_DATA_DIR): keep it on a volume. See docs/deployment.md.

# Build stage: wheels of exactly the versions in requirements.lock (checked against its hashes), and ssobridge's.
FROM python:3.13-slim AS build
WORKDIR /src
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md ./
COPY ssobridge ./ssobridge
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Final stage: only those wheels, installed offline; no compiler, no source tree, no pip cache.
FROM python:3.13-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ssobridge \
    && mkdir -p /var/lib/ssobridge && chown ssobridge /var/lib/ssobridge && chmod 0700 /var/lib/ssobridge
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels ssobridge
VOLUME /var/lib/ssobridge

USER ssobridge
ENV SSOBRIDGE_CONFIG=/etc/ssobridge/ssobridge.toml \
    SSOBRIDGE_DATA_DIR=/var/lib/ssobridge \
    PYTHONUNBUFFERED=1
EXPOSE 8290
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 CMD ["ssobridge", "healthcheck"]
ENTRYPOINT ["ssobridge"]
CMD ["serve"]
