"""/fhir/R4/ routes (docs/fhir.md)."""

from django.urls import path

from pathways.fhir.views import ApplyView, InstanceView, MetadataView, SystemView, TypeView

urlpatterns = [
    path("", SystemView.as_view(), name="fhir-system"),
    path("metadata", MetadataView.as_view(), name="fhir-metadata"),
    path("PlanDefinition/<str:pk>/$apply", ApplyView.as_view(), name="fhir-plandefinition-apply"),
    path("<str:resource_type>", TypeView.as_view(), name="fhir-type"),
    path("<str:resource_type>/<str:pk>", InstanceView.as_view(), name="fhir-instance"),
]
