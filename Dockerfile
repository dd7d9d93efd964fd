# deg-conformance as a container, for CI gates: `docker run --rm -v "$PWD:/work" deg-conformance run ...`.
# The first stage builds the wheel from this checkout; the image holds only the installed wheel (its scenarios,
# fixtures, packs and schemas are inside the package), and runs as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY conformance ./conformance
COPY scenarios ./scenarios
COPY fixtures ./fixtures
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist \
    && useradd --create-home --uid 10001 conformance
USER conformance
WORKDIR /work
ENTRYPOINT ["deg-conformance"]
CMD ["--help"]
