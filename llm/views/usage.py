"""GET /v1/llm/usage/history (per request) and GET /v1/llm/usage/breakdown (per day or week)."""

from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from gpuniq_site.responses import native_ok

from .. import serializers as s
from billing import usage_history
from .chats import valid

TAG = ["Usage"]


class UsageHistoryView(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="usage_history",
        summary="Your requests, newest first, with tokens and cost",
        parameters=[s.UsagePageQuery],
        responses=s.envelope("UsageHistoryResponse", s.UsageHistoryOut()),
    )
    def get(self, request):
        page = valid(s.UsagePageQuery, request.query_params)
        return native_ok(request, usage_history.history(request.user.principal.user_id, **page))


class UsageBreakdownView(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="usage_breakdown",
        summary="Requests, tokens and cost per day or week, in your time zone",
        parameters=[s.BreakdownQuery],
        responses=s.envelope("UsageBreakdownResponse", s.UsageBreakdownOut()),
    )
    def get(self, request):
        query = valid(s.BreakdownQuery, request.query_params)
        return native_ok(
            request,
            usage_history.breakdown(
                request.user.principal.user_id,
                period=query["period"],
                start=query.get("start"),
                end=query.get("end"),
                tz=query["tz"],
                group_by=query.get("group_by"),
            ),
        )
