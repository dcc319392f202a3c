"""``/v1/chat/completions`` and ``/v1/models``, as the OpenAI SDK expects them."""
