"""Test-only credentials of the registry servers the integration tests start."""

OCI_USER, OCI_PASSWORD = "buildsys", "buildsys-test-password"
#: bcrypt (cost 4) of OCI_PASSWORD, as docker-registry's htpasswd file wants it
OCI_HTPASSWD = f"{OCI_USER}:$2b$04$Jh5mMAL/.aq5PMvo22fmiuljBJn2wbOOg3P9FZSVaIZeIVh2pfVXC"
MLFLOW_USER, MLFLOW_PASSWORD = "admin", "buildsys-Test-passw0rd"
