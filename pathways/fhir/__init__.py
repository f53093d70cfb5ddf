"""FHIR R4 interface at /fhir/R4/ (docs/fhir.md): resources built and validated with fhir.resources (R4B
models), searches scoped by pathways.selectors.access, labs ingested through the observation service.

An interface layer like pathways.api: it imports services, selectors, domain and models; only carepath/urls.py
imports it."""
