# The official Airflow image with this package (hook, operators, sensor, the local GoToAssist API
# server) installed, for docker-compose.yml. The DAGs and plugins folders are mounted, not copied, so
# editing a DAG needs no rebuild; changing include/ does (docker compose build).
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root pyproject.toml README.md /opt/project/
COPY --chown=airflow:root include /opt/project/include
# Naming the image's Airflow version keeps pip from moving it while it installs the package.
RUN pip install --no-cache-dir "apache-airflow==3.3.2" "/opt/project[server,redis]"
