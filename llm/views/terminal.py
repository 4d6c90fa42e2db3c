"""POST /v1/llm/terminal/commands (see llm.terminal.generate)."""

from django.views.decorators.http import require_POST

from accounts.guard import key_required
from gpuniq_site.responses import native_ok

from ..terminal import generate
from ..validation import parse_body


@require_POST
@key_required
async def terminal_commands(request):
    command_request = generate.parse_request(parse_body(request.body))
    data = await generate.generate(request.principal, command_request, request.request_id)
    return native_ok(request, data)
