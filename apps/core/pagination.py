"""Pagination for HTML lists: every list in the portal is paginated with the same page size and controls."""

from django.core.paginator import Paginator

HTML_PAGE_SIZE = 25


def paginate(request, queryset, *, per_page: int = HTML_PAGE_SIZE):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))
