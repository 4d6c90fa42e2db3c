"""The OpenAI Responses API front door (POST /v1/openai/responses): a translator over the canonical
Chat Completions request. Parsing is `request`, the reply object `reply`, the typed event stream
`events`, stored responses `store`, the OpenAI pass-through `forward`; `views` wires them."""
