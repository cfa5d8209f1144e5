#!/usr/bin/env python3
"""Drives `stampede serve` with the official `openai` Python package, for the proxy tests.

Usage: openai_client.py MODE BASE_URL API_KEY PROMPT [ARG]
  complete  one completion; ARG: JSON object of extra request headers
  stream    one streamed completion (with usage); prints each piece with its arrival time;
            ARG: a file to which each piece's text is also appended, flushed, as it arrives
            (so a test can see a piece arrive while the process still runs)
  herd      ARG concurrent identical completions started together (threads behind a barrier)
  error     one completion expected to fail; ARG: the model to ask for
  rich      one streamed completion through the package's own accumulator
            (`client.chat.completions.stream`); ARG: the model; offers a `search_docs` tool
            when the prompt starts with "tool:"; reports reasoning, tool calls and the source
  plain     the same request, not streamed
  embed     one embeddings request (the package's default base64 encoding); PROMPT holds
            the inputs separated by "|"; ARG: the model
Prints one JSON document on stdout.
"""
import json
import sys
import threading
import time

import openai


def messages(prompt):
    return [{"role": "user", "content": prompt}]


def complete(client, prompt, headers):
    raw = client.chat.completions.with_raw_response.create(model="sim-model", messages=messages(prompt), extra_headers=headers)
    completion = raw.parse()
    return {
        "content": completion.choices[0].message.content,
        "cache_status": raw.headers.get("cache-status"),
        "source": raw.headers.get("x-stampede-source"),
        "age": raw.headers.get("age"),
        "total_tokens": completion.usage.total_tokens if completion.usage else None,
    }


def stream(client, prompt, progress_path):
    start = time.monotonic()
    pieces, final, usage = [], None, None
    progress = open(progress_path, "a", encoding="utf-8") if progress_path else None
    for chunk in client.chat.completions.create(
        model="sim-model", messages=messages(prompt), stream=True, stream_options={"include_usage": True}
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append({"t": time.monotonic() - start, "at": time.time(), "text": chunk.choices[0].delta.content})
            if progress:
                progress.write(json.dumps(chunk.choices[0].delta.content) + "\n")
                progress.flush()
        extra = chunk.model_extra or {}
        if "stampede" in extra:
            final = extra["stampede"]
        if chunk.usage:
            usage = chunk.usage.total_tokens
    return {"pieces": pieces, "content": "".join(piece["text"] for piece in pieces), "stampede": final, "total_tokens": usage}


TOOLS = [{"type": "function", "function": {"name": "search_docs", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]


def rich_arguments(prompt, model):
    arguments = {"model": model, "messages": messages(prompt)}
    if prompt.startswith("tool:"):
        arguments["tools"] = TOOLS
    return arguments


def message_report(message, finish_reason):
    extra = message.model_extra or {}
    return {
        "content": message.content,
        "reasoning": extra.get("reasoning_content"),
        "tool_calls": [
            {"id": call.id, "name": call.function.name, "arguments": call.function.arguments} for call in (message.tool_calls or [])
        ],
        "finish_reason": finish_reason,
    }


def rich(client, prompt, model):
    reasoning_chunks, content_chunks, first_content_after_reasoning, source = 0, 0, True, None
    with client.chat.completions.stream(**rich_arguments(prompt, model)) as events:
        for event in events:
            if event.type != "chunk":
                continue
            chunk = event.chunk
            extra = chunk.model_extra or {}
            if "stampede" in extra:
                source = extra["stampede"]["source"]
            if not chunk.choices:
                continue
            delta_extra = chunk.choices[0].delta.model_extra or {}
            if delta_extra.get("reasoning_content"):
                reasoning_chunks += 1
                if content_chunks:
                    first_content_after_reasoning = False
            if chunk.choices[0].delta.content:
                content_chunks += 1
        final = events.get_final_completion()
    report = message_report(final.choices[0].message, final.choices[0].finish_reason)
    report.update({"reasoning_chunks": reasoning_chunks, "content_chunks": content_chunks, "reasoning_first": first_content_after_reasoning, "source": source})
    return report


def plain(client, prompt, model):
    raw = client.chat.completions.with_raw_response.create(**rich_arguments(prompt, model))
    completion = raw.parse()
    report = message_report(completion.choices[0].message, completion.choices[0].finish_reason)
    report["source"] = raw.headers.get("x-stampede-source")
    return report


def embed(client, prompt, model):
    raw = client.embeddings.with_raw_response.create(model=model, input=prompt.split("|"))
    result = raw.parse()
    return {
        "vectors": [item.embedding for item in result.data],
        "indexes": [item.index for item in result.data],
        "model": result.model,
        "prompt_tokens": result.usage.prompt_tokens,
        "cache_status": raw.headers.get("cache-status"),
        "source": raw.headers.get("x-stampede-source"),
    }


def herd(client, prompt, count):
    barrier = threading.Barrier(count)
    results = [None] * count

    def one(index):
        barrier.wait()
        try:
            results[index] = complete(client, prompt, {})
        except Exception as error:  # reported, so the test shows it
            results[index] = {"error": repr(error)}

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def error(client, prompt, model):
    try:
        client.chat.completions.create(model=model, messages=messages(prompt))
    except openai.APIStatusError as failure:
        return {"class": type(failure).__name__, "status": failure.status_code, "body": failure.body}
    return {"class": None}


def main():
    mode, base_url, api_key, prompt = sys.argv[1:5]
    argument = sys.argv[5] if len(sys.argv) > 5 else None
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    if mode == "complete":
        result = complete(client, prompt, json.loads(argument) if argument else {})
    elif mode == "stream":
        result = stream(client, prompt, argument)
    elif mode == "herd":
        result = herd(client, prompt, int(argument))
    elif mode == "rich":
        result = rich(client, prompt, argument or "sim-model")
    elif mode == "plain":
        result = plain(client, prompt, argument or "sim-model")
    elif mode == "embed":
        result = embed(client, prompt, argument or "sim-embed")
    elif mode == "error":
        result = error(client, prompt, argument or "sim-model")
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
