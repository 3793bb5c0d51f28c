# vllm-to-sglang: an image that the vLLM production stack runs in place of vllm/vllm-openai. `vllm serve ...`
# starts haproxy (public port) -> middleware -> SGLang under supervisord. See docs/building-image.md.
#
#   docker build -t vllm-to-sglang .                                        # CUDA (SGLang's cu129 image)
#   docker build --build-arg BASE_IMAGE=lmsysorg/sglang-rocm:v0.5.23-rocm720-mi30x-<date> -t vllm-to-sglang:rocm .
#
# SGLANG_VERSION is the SGLang release our contract tests run against (tests/packaging/test_dockerfile.py keeps it
# equal to scripts/setup-sglang-env.sh); the build fails if BASE_IMAGE carries another one.
ARG SGLANG_VERSION=0.5.23
ARG BASE_IMAGE=lmsysorg/sglang:v${SGLANG_VERSION}-cu129

FROM ${BASE_IMAGE}

ARG SGLANG_VERSION
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="vllm-to-sglang" \
      org.opencontainers.image.description="vLLM-compatible command line and HTTP API served by SGLang" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      sglang-version="${SGLANG_VERSION}"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# /opt/venv/bin first: `vllm`, `python -m vllm.entrypoints.openai.api_server` and the engine's
# `python3 -m sglang.launch_server` all resolve through it (the venv sees SGLang via system site-packages).
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VLLM_SHIM_RUN_DIR=/tmp/vllm-shim

COPY . /tmp/vllm-shim-src
# setup-image.sh: drop any real vllm, create /opt/venv, run scripts/install.sh (haproxy from apt + this
# package + supervisor from PyPI, SGLang's packages pinned), link /usr/local/bin/vllm and
# /etc/supervisord.conf, then deploy/image/verify-install.sh.
RUN EXPECT_SGLANG_VERSION="${SGLANG_VERSION}" /tmp/vllm-shim-src/deploy/image/setup-image.sh \
 && rm -rf /tmp/vllm-shim-src /var/lib/apt/lists/* \
 && install -d -m 0775 -g 0 /opt/vllm-shim

# Any uid works (OpenShift: random uid, group 0): nothing here needs a home directory, the run directory
# is created under /tmp at start, and the working directory is group-0 writable.
WORKDIR /opt/vllm-shim
EXPOSE 8000

# Like recent vllm/vllm-openai images: `docker run IMAGE MODEL --flags`. (Old ones ran
# `python3 -m vllm.entrypoints.openai.api_server`, which resolves to the shim here too.)
# The chart and the operator replace it with their own command (`vllm serve ...`, `/opt/venv/bin/vllm serve ...`).
# No HEALTHCHECK: Kubernetes ignores it, and the public port is a run-time argument (--port).
ENTRYPOINT ["vllm", "serve"]
