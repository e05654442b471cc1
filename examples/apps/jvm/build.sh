#!/usr/bin/env bash
# Build the JVM order service once (Maven, from Maven Central); a second run reuses target/orders-jvm.jar.
set -euo pipefail
cd "$(dirname "$0")"
jar=target/orders-jvm.jar
if [ -f "$jar" ] && [ "$jar" -nt pom.xml ] && [ -z "$(find src -newer "$jar" -type f | head -1)" ]; then exit 0; fi
command -v mvn >/dev/null || { echo "build.sh: Maven (mvn) is needed to build the JVM example app: apt-get install maven" >&2; exit 1; }
mvn -q -B -e package -DskipTests >&2
