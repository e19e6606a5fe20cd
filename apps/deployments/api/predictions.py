"""The prediction-log API: serializers and views.

    GET  /api/v1/deployments/<uuid>/predictions/        a deployment's predictions (filters, paginated)
    GET  /api/v1/predictions/<id>/                      one prediction, its ground truth and explanations
    POST /api/v1/predictions/<id>/ground-truth/         {actual, observed_at?}: record or replace its outcome
    POST /api/v1/ground-truth/                          {items: [{prediction_id, actual, observed_at?}]}: all or none
    POST /api/v1/predictions/<id>/explanations/         queue an explanation (202)
    GET  /api/v1/explanations/<uuid>/                   an explanation's status and contributions

Reads go through apps.deployments.selectors.predictions (what the caller may not see is a 404), writes through
apps.deployments.services.predictions (input serializer -> service -> output serializer), which check the policy.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import StandardPagination
from apps.deployments.models import GroundTruth, Prediction, PredictionExplanation
from apps.deployments.selectors.predictions import (
    deployment_for_predictions,
    explanation_get,
    prediction_for_ground_truth,
    prediction_get,
    prediction_list,
)
from apps.deployments.services.predictions import (
    MAX_BULK_ITEMS,
    explanation_request,
    ground_truth_record,
    ground_truth_record_bulk,
)


def _errors(*codes: int) -> dict:
    texts = {
        400: 'Invalid input: {"message": ..., "errors": {field: [messages]}}',
        401: "Not signed in.",
        403: "Your role does not allow this.",
        404: "No such object, or you may not see it.",
    }
    return {code: OpenApiResponse(description=texts[code]) for code in codes}


def _parsed(serializer_class, data):
    body = serializer_class(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


# --- Output ---------------------------------------------------------------------------------------------------------
class GroundTruthSerializer(serializers.ModelSerializer):
    recorded_by = serializers.CharField(source="recorded_by.username", read_only=True)

    class Meta:
        model = GroundTruth
        fields = ["actual", "observed_at", "recorded_by", "recorded_at"]


class ExplanationSerializer(serializers.ModelSerializer):
    prediction = serializers.CharField(source="prediction_id", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)

    class Meta:
        model = PredictionExplanation
        fields = ["id", "prediction", "status", "result", "error", "requested_by", "created_at", "finished_at"]


class PredictionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)
    ground_truth = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "id",
            "deployment",
            "version",
            "variant",
            "shadow",
            "shadow_of",
            "inputs",
            "outputs",
            "latency_ms",
            "predicted_at",
            "ground_truth",
        ]

    @staticmethod
    def _truth(prediction):
        try:
            return prediction.truth
        except GroundTruth.DoesNotExist:
            return None

    @extend_schema_field(GroundTruthSerializer(allow_null=True))
    def get_ground_truth(self, prediction):
        truth = self._truth(prediction)
        return None if truth is None else {"actual": truth.actual, "observed_at": truth.observed_at}


class PredictionDetailSerializer(PredictionSerializer):
    registered_model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version_id = serializers.UUIDField(source="version.pk", read_only=True)
    explanations = ExplanationSerializer(many=True, read_only=True)

    class Meta(PredictionSerializer.Meta):
        fields = [*PredictionSerializer.Meta.fields, "registered_model", "version_id", "explanations"]

    @extend_schema_field(GroundTruthSerializer(allow_null=True))
    def get_ground_truth(self, prediction):
        truth = self._truth(prediction)
        return None if truth is None else GroundTruthSerializer(truth).data


class GroundTruthBulkResultSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()


# --- Input ----------------------------------------------------------------------------------------------------------
class PredictionFilterSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, help_text="The version's number.")
    variant = serializers.CharField(required=False, max_length=50)
    shadow = serializers.BooleanField(required=False, allow_null=True, default=None)
    since = serializers.DateTimeField(required=False, help_text="Predictions made at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Predictions made before this time.")
    has_ground_truth = serializers.BooleanField(required=False, allow_null=True, default=None)


class GroundTruthInputSerializer(serializers.Serializer):
    actual = serializers.JSONField(help_text="The outcome: a class label, or a number for regression.")
    observed_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Default: now.")


class GroundTruthItemSerializer(serializers.Serializer):
    """One item of a bulk call (documentation of its shape; items are parsed one by one to name `items[i].field`)."""

    prediction_id = serializers.CharField()
    actual = serializers.JSONField()
    observed_at = serializers.DateTimeField(required=False, allow_null=True)


class GroundTruthBulkInputSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.JSONField(), max_length=MAX_BULK_ITEMS)

    class Meta:
        ref_name = "GroundTruthBulkInput"

    def validate_items(self, items: list) -> list[dict]:
        """Dates parsed, anything else left to the service; errors named `items[i].observed_at`."""
        parse = serializers.DateTimeField()
        errors: dict[str, list[str]] = {}
        parsed = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                parsed.append(item)
                continue
            item = dict(item)
            if item.get("observed_at") is not None:
                try:
                    item["observed_at"] = parse.to_internal_value(item["observed_at"])
                except serializers.ValidationError as exc:
                    errors[f"items[{index}].observed_at"] = [str(message) for message in exc.detail]
            parsed.append(item)
        if errors:
            raise serializers.ValidationError(errors)
        return parsed

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail
            if isinstance(detail, dict) and isinstance(detail.get("items"), dict):
                raise serializers.ValidationError(detail["items"]) from None  # already named items[i].field
            raise


# --- Views ----------------------------------------------------------------------------------------------------------
class DeploymentPredictionListView(APIView):
    @extend_schema(
        summary="The deployment's logged predictions, newest first",
        parameters=[PredictionFilterSerializer],
        responses={200: PredictionSerializer(many=True), **_errors(400, 401, 403, 404)},
    )
    def get(self, request, pk):
        deployment = deployment_for_predictions(actor=request.user, pk=pk)
        filters = _parsed(PredictionFilterSerializer, request.query_params)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(prediction_list(deployment=deployment, filters=filters), request, view=self)
        return paginator.get_paginated_response(PredictionSerializer(page, many=True).data)


class PredictionDetailView(APIView):
    @extend_schema(
        summary="A logged prediction: inputs, outputs, version, ground truth and explanations",
        responses={200: PredictionDetailSerializer, **_errors(401, 404)},
    )
    def get(self, request, pk):
        return Response(PredictionDetailSerializer(prediction_get(actor=request.user, pk=pk)).data)


class PredictionGroundTruthView(APIView):
    @extend_schema(
        summary="Record (or replace) the actual outcome of a prediction",
        request=GroundTruthInputSerializer,
        responses={200: GroundTruthSerializer, **_errors(400, 401, 403, 404)},
    )
    def post(self, request, pk):
        prediction = prediction_for_ground_truth(actor=request.user, pk=pk)
        data = _parsed(GroundTruthInputSerializer, request.data)
        truth = ground_truth_record(prediction=prediction, actor=request.user, **data)
        return Response(GroundTruthSerializer(truth).data)


class GroundTruthBulkView(APIView):
    @extend_schema(
        summary=f"Record the actual outcomes of up to {MAX_BULK_ITEMS} predictions: all of them, or none",
        request=GroundTruthBulkInputSerializer,
        responses={200: GroundTruthBulkResultSerializer, **_errors(400, 401, 403)},
    )
    def post(self, request):
        data = _parsed(GroundTruthBulkInputSerializer, request.data)
        recorded = ground_truth_record_bulk(actor=request.user, items=data["items"])
        return Response({"recorded": recorded})


class PredictionExplanationCreateView(APIView):
    @extend_schema(
        summary="Explain a logged prediction with the version that made it (queued; poll the explanation)",
        request=None,
        responses={202: ExplanationSerializer, **_errors(401, 403, 404)},
    )
    def post(self, request, pk):
        prediction = prediction_get(actor=request.user, pk=pk)
        explanation = explanation_request(prediction=prediction, actor=request.user)
        body = ExplanationSerializer(explanation_get(actor=request.user, pk=explanation.pk)).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ExplanationDetailView(APIView):
    @extend_schema(
        summary="An explanation of a logged prediction: status, and the contributions once it succeeded",
        responses={200: ExplanationSerializer, **_errors(401, 404)},
    )
    def get(self, request, pk):
        return Response(ExplanationSerializer(explanation_get(actor=request.user, pk=pk)).data)
