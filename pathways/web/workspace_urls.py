"""The workspace's routes, in the `workspace` namespace: specialists' pages and coordinators' pages."""

from pathways.web import coordinator_urls, specialist_urls

app_name = "workspace"

urlpatterns = [*specialist_urls.urlpatterns, *coordinator_urls.urlpatterns]
