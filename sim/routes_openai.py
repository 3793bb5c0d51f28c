"""`/v1/chat/completions` and `/v1/completions`: streaming (SSE) and non-streaming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from sim.errors import Endpoint, JSONBytesResponse, parse_body
from sim.protocol import ChatCompletionRequest, CompletionRequest
from sim.replies import (
    DONE,
    Choice,
    chat_chunk,
    chat_response,
    completion_chunk,
    completion_response,
    delta,
    finish_fields,
    logprob_entry,
    running_usage,
    sse,
    tool_call,
    usage_chunk,
)
from sim.scheduler import Finish, TokenEvent, merge
from sim.script import Script, script_chat, script_completion
from sim.state import SimState, get_state

HANG_AFTER_CHUNKS = 3
CHAT = Endpoint("openai_v1_chat_completions", 1870)
COMPLETIONS = Endpoint("openai_v1_completions", 1851)

_T = TypeVar("_T")

async def chat_completions(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, ChatCompletionRequest, CHAT)
    return await respond_paired(request, state, req, script_chat(req, state))


async def completions(request: Request) -> Response:
    state = get_state(request)
    req = await parse_body(request, CompletionRequest, COMPLETIONS)
    return await respond_paired(request, state, req, script_completion(req, state))


async def respond_paired(
    request: Request, state: SimState, req: ChatCompletionRequest | CompletionRequest, script: Script
) -> Response:
    """`respond`, as one half of a bootstrap room when the server runs with --disaggregation-mode."""
    if state.disagg is None:
        return await respond(request, state, script)
    return await state.disagg.serve(script.rid, req.bootstrap_host, req.bootstrap_port, req.bootstrap_room,
                                    lambda: respond(request, state, script))  # fmt: skip


async def respond(request: Request, state: SimState, script: Script) -> Response:
    if script.stream:
        chunks = stream(script, state)
        if state.fault.kind == "hang_mid_stream":
            chunks = hang_after(chunks, HANG_AFTER_CHUNKS, request)
        elif state.fault.kind == "split_error_mid_stream":
            chunks = split_error_after(chunks, HANG_AFTER_CHUNKS)
        return StreamingResponse(chunks, media_type="text/event-stream")
    choices = await until_disconnect(request, collect(script, state))
    if choices is None:
        return Response(status_code=499)  # nobody is listening; the status only shows up in access logs
    render = chat_response if script.kind == "chat" else completion_response
    return JSONBytesResponse(render(script, choices))


async def collect(script: Script, state: SimState) -> list[Choice]:
    choices = [Choice() for _ in script.specs]
    async with aclosing(merge([state.engine.generate(s) for s in script.specs])) as events:
        async for index, event in events:
            choices[index].add(event)
    return choices


async def stream(script: Script, state: SimState) -> AsyncGenerator[bytes, None]:
    choices = [Choice() for _ in script.specs]
    render = _chat_chunks if script.kind == "chat" else _completion_chunks
    async with aclosing(merge([state.engine.generate(s) for s in script.specs])) as events:
        async for index, event in events:
            for chunk in render(script, index, choices[index], event):
                yield sse(chunk)
    if script.include_usage:
        yield sse(usage_chunk(script, choices))
    yield DONE


def _chat_chunks(script: Script, index: int, choice: Choice, event: TokenEvent | Finish) -> list[dict[str, Any]]:
    chunks = []
    if not choice.started:
        # SGLang opens each choice with a role chunk when its first output arrives.
        chunks.append(chat_chunk(script, index, delta(role="assistant", content="")))
        choice.started = True
    choice.add(event)
    if isinstance(event, TokenEvent):
        if script.tool_name is not None:
            return chunks  # tool calls are parsed from the whole output, so they go out at the end
        in_reasoning = len(choice.pieces) <= script.reasoning_pieces
        d = delta(reasoning=event.text) if in_reasoning else delta(content=event.text)
        logprobs = {"content": [logprob_entry(event.text, script.top_logprobs)]} if script.logprobs else None
        usage_ = running_usage(script, choice) if script.continuous_usage else None
        return [*chunks, chat_chunk(script, index, d, logprobs=logprobs, usage_=usage_)]
    if choice.calls_tool(script):
        chunks.append(chat_chunk(script, index, delta(tool_calls=[tool_call(script, 0, "")])))
        chunks.append(chat_chunk(script, index, delta(tool_calls=[tool_call(script, 0, "{}", with_header=False)])))
    elif script.tool_name is not None and choice.pieces:
        chunks.append(chat_chunk(script, index, delta(content="".join(choice.pieces))))
    return [*chunks, chat_chunk(script, index, delta(), finish=finish_fields(script, choice))]


def _completion_chunks(script: Script, index: int, choice: Choice, event: TokenEvent | Finish) -> list[dict[str, Any]]:
    prefix = ""
    if not choice.started:
        prefix = script.echo_texts[index] if script.echo_texts else ""
        choice.started = True
    choice.add(event)
    if isinstance(event, TokenEvent):
        usage_ = running_usage(script, choice) if script.continuous_usage else None
        return [completion_chunk(script, index, prefix + event.text, usage_=usage_)]
    return [completion_chunk(script, index, prefix, finish=finish_fields(script, choice))]


async def hang_after(
    chunks: AsyncGenerator[bytes, None], count: int, request: Request
) -> AsyncGenerator[bytes, None]:
    """Fault `hang_mid_stream`: pass a few chunks, then never send another byte (until the client leaves).

    A hung stream sends nothing, so nothing fails on send: like SGLang's tokenizer manager, which checks for
    a disconnected client while it waits for tokens, poll for the client leaving and then abort.
    """
    async with aclosing(chunks):
        sent = 0
        async for chunk in chunks:
            yield chunk
            sent += 1
            if sent >= count:
                while not await request.is_disconnected():
                    await asyncio.sleep(0.5)
                return


# SGLang's serving_base.create_streaming_error_response: json.dumps (spaces after separators) of ErrorResponse.
SPLIT_ERROR_EVENT = (
    b'data: {"error": {"object": "error", "message": "The engine failed mid-stream.", "type": "BadRequestError", '
    b'"param": null, "code": 400}}\n\n'
)


async def split_error_after(chunks: AsyncGenerator[bytes, None], count: int) -> AsyncGenerator[bytes, None]:
    """Fault `split_error_mid_stream`: a few chunks, then SGLang's error event in two writes 50 ms apart (so a
    proxy reads it in two pieces), then `[DONE]`."""
    async with aclosing(chunks):
        sent = 0
        async for chunk in chunks:
            yield chunk
            sent += 1
            if sent >= count:
                break
    half = len(b'data: {"err')
    yield SPLIT_ERROR_EVENT[:half]
    await asyncio.sleep(0.05)
    yield SPLIT_ERROR_EVENT[half:]
    yield b"data: [DONE]\n\n"


async def until_disconnect(request: Request, work: Awaitable[_T]) -> _T | None:
    """Run `work`, cancelling it if the client disconnects first (SGLang aborts such requests too)."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(watch())
    await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        watcher.cancel()
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None
