# The gateway's image: a non-editable install with production dependencies only (what
# tests/test_deploy_install.py runs), static files collected at build, a non-root user.
# Every process of the stack runs from it; compose.yaml says which command each one runs.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml MANIFEST.in README.md ./
COPY gpuniq_site gpuniq_site
COPY accounts accounts
COPY billing billing
COPY llm llm
COPY media_jobs media_jobs
RUN python -m venv /opt/gpuniq && /opt/gpuniq/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/gpuniq/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=gpuniq_site.settings GPUNIQ_VAR_DIR=/var/lib/gpuniq \
    STATIC_ROOT=/opt/gpuniq/staticfiles MEDIA_ROOT=/var/lib/gpuniq/media
RUN useradd --system --create-home --uid 10001 gpuniq
COPY --from=build /opt/gpuniq /opt/gpuniq
# collectstatic needs settings, not services: a throwaway key and database for this one command
RUN SECRET_KEY=build-only DATABASE_URL=sqlite:////tmp/build.sqlite3 gpuniq-manage collectstatic --noinput \
    && rm -rf /var/lib/gpuniq/* /tmp/build.sqlite3 \
    && mkdir -p /var/lib/gpuniq/media && chown -R gpuniq:gpuniq /var/lib/gpuniq
USER gpuniq
WORKDIR /var/lib/gpuniq
EXPOSE 8000
# the app server; workers and beat override the command (compose.yaml)
CMD ["gpuniq-web"]
