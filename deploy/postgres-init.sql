-- One database per service (docker-compose.yml); each service migrates its own schema.
CREATE DATABASE auth;
CREATE DATABASE "order";
CREATE DATABASE inventory;
CREATE DATABASE billing;
CREATE DATABASE notification;
