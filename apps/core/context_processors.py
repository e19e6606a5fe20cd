from django.conf import settings

from apps.core.navigation import areas_for


def navigation(request):
    areas = areas_for(getattr(request, "user", None))
    path = request.path
    for area in areas:
        area["active"] = path.startswith(area["url"])
    return {"nav_areas": areas, "environment": settings.ENVIRONMENT}
