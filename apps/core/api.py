"""Base classes every API module builds on."""

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class ErrorSerializer(serializers.Serializer):
    """Every API error (apps.core.exceptions.api_exception_handler): a sentence, and each wrong field's messages."""

    message = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class StandardPagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200
