namespace Loop.Testing;

using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>One call of the Messages API the double received: its JSON body, whether it carried the
/// right key and an <c>anthropic-version</c>, and the status it was answered with.</summary>
public sealed record AnthropicCall(JsonObject Body, bool Authorized, string? Version, int Status)
{
    /// <summary>The conversation sent, as (role, text) with a string content or its text blocks joined.</summary>
    public IReadOnlyList<(string Role, string Text)> Messages =>
        Body["messages"] is JsonArray messages
            ? messages.Select(m => ((string)m!["role"]!, AnthropicDouble.TextOf(m["content"]))).ToList()
            : [];

    public string? System => Body["system"] is { } system ? AnthropicDouble.TextOf(system) : null;

    public string? Model => (string?)Body["model"];
}

/// <summary>Tokens a reply reports in its <c>usage</c>.</summary>
public sealed record AnthropicUsage(long Input, long Output, long CacheWrite = 0, long CacheRead = 0);

/// <summary>How the double answers one call.</summary>
public abstract record AnthropicAnswer
{
    /// <summary>A reply streamed in <paramref name="Chunks"/> text deltas (or one message without
    /// <c>stream</c>). Without <paramref name="Usage"/>, tokens are counted at 4 characters each.</summary>
    public sealed record Reply(string Text, AnthropicUsage? Usage = null, int Chunks = 3) : AnthropicAnswer;

    /// <summary>An HTTP error with the documented body <c>{"type":"error","error":{type, message}}</c>,
    /// e.g. 529 overloaded_error or 401 authentication_error.</summary>
    public sealed record Refusal(int Status, string Type, string Message) : AnthropicAnswer;

    /// <summary>A stream that starts, sends <paramref name="TextBefore"/>, then an <c>error</c> event
    /// (as the API does when it is overloaded mid-reply).</summary>
    public sealed record BrokenStream(string TextBefore, string Type, string Message) : AnthropicAnswer;
}

/// <summary>
/// A local Anthropic Messages API on loopback: <c>POST /v1/messages</c>, checked as the API checks it
/// (the key, an <c>anthropic-version</c>, <c>model</c>, <c>max_tokens</c>, and messages that alternate
/// from the user's) and answered with a message, or with <c>stream: true</c> as server-sent events in
/// the documented order: <c>message_start</c>, <c>content_block_start</c>, <c>ping</c>,
/// <c>content_block_delta</c> (<c>text_delta</c>)…, <c>content_block_stop</c>, <c>message_delta</c>
/// (stop_reason and usage), <c>message_stop</c>. Errors are the documented
/// <c>{"type":"error","error":{"type","message"},"request_id"}</c> with their HTTP status, or an
/// <c>error</c> event inside a stream. Tests script answers, read every call, and can hold a stream
/// after its first delta to see the reply arrive while it is being written.
/// </summary>
public sealed class AnthropicDouble : IAsyncDisposable
{
    /// <summary>The key the double accepts: distinctive, so a test can look for it in logs and files.</summary>
    public const string ApiKey = "sk-ant-api03-LOOPTESTDOUBLE-5f2b8c1e9a7d4e3b";

    private readonly WebApplication _app;
    private readonly object _gate = new();
    private readonly List<AnthropicCall> _calls = [];
    private readonly Queue<AnthropicAnswer> _answers = new();
    private Hold? _hold;
    private int _requests;

    private AnthropicDouble(WebApplication app) => _app = app;

    public static async Task<AnthropicDouble> StartAsync(CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var api = new AnthropicDouble(app);
        app.MapPost("/v1/messages", api.MessagesAsync);
        app.MapFallback(context => WriteErrorAsync(context, 404, "not_found_error", "Not found", api.NextRequestId()));
        await app.StartAsync(cancellationToken);
        api.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return api;
    }

    /// <summary>What goes into <c>anthropic_base_url</c>.</summary>
    public string BaseUrl { get; private set; } = "";

    public IReadOnlyList<AnthropicCall> Calls
    {
        get { lock (_gate) { return _calls.ToList(); } }
    }

    /// <summary>Answers the next calls with these, in order; after them, each call gets a reply that
    /// echoes the last user message ("Echo: …").</summary>
    public void Enqueue(params AnthropicAnswer[] answers)
    {
        lock (_gate)
        {
            foreach (var answer in answers)
            {
                _answers.Enqueue(answer);
            }
        }
    }

    /// <summary>While set, every call is refused with it (retries included), as an API that is overloaded
    /// or rejects the key answers each attempt.</summary>
    public AnthropicAnswer.Refusal? Refusing { get; set; }

    /// <summary>The next streamed reply stops after its first text delta until the hold is released.</summary>
    public Hold HoldNextStream()
    {
        var hold = new Hold();
        lock (_gate)
        {
            _hold = hold;
        }
        return hold;
    }

    private string NextRequestId() => "req_double_" + Interlocked.Increment(ref _requests).ToString("D6", CultureInfo.InvariantCulture);

    private async Task MessagesAsync(HttpContext context)
    {
        var requestId = NextRequestId();
        var request = context.Request;
        var key = request.Headers["x-api-key"].ToString() is { Length: > 0 } given ? given
            // The documented header is x-api-key; the official SDKs send the key as a bearer token.
            : request.Headers.Authorization.ToString() is var bearer && bearer.StartsWith("Bearer ", StringComparison.Ordinal) ? bearer[7..]
            : null;
        var version = request.Headers["anthropic-version"].ToString() is { Length: > 0 } v ? v : null;
        JsonObject? body = null;
        try
        {
            body = await JsonNode.ParseAsync(request.Body, cancellationToken: context.RequestAborted) as JsonObject;
        }
        catch (JsonException)
        {
        }

        var (status, type, message) = key is null ? (401, "authentication_error", "x-api-key header is required")
            : key != ApiKey ? (401, "authentication_error", "invalid x-api-key")
            : version is null ? (400, "invalid_request_error", "anthropic-version: header is required")
            : !(request.ContentType ?? "").StartsWith("application/json", StringComparison.OrdinalIgnoreCase) ? (400, "invalid_request_error", "content-type must be application/json")
            : body is null ? (400, "invalid_request_error", "The request body is not valid JSON")
            : Problem(body) is { } problem ? (400, "invalid_request_error", problem)
            : (200, "", "");

        AnthropicAnswer? answer = null;
        Hold? hold = null;
        if (status == 200)
        {
            lock (_gate)
            {
                answer = Refusing ?? (_answers.TryDequeue(out var next) ? next : null);
                if (body!["stream"]?.GetValueKind() == JsonValueKind.True)
                {
                    (hold, _hold) = (_hold, null);
                }
            }
            answer ??= new AnthropicAnswer.Reply("Echo: " + LastUserText(body!));
            if (answer is AnthropicAnswer.Refusal refusal)
            {
                (status, type, message) = (refusal.Status, refusal.Type, refusal.Message);
            }
        }
        lock (_gate)
        {
            _calls.Add(new AnthropicCall(body ?? [], key == ApiKey, version, status));
        }
        if (status != 200)
        {
            await WriteErrorAsync(context, status, type, message, requestId);
            return;
        }

        var model = (string)body!["model"]!;
        context.Response.Headers["request-id"] = requestId;
        if (body["stream"]?.GetValueKind() != JsonValueKind.True)
        {
            var reply = (AnthropicAnswer.Reply)answer!;
            var usage = UsageOf(reply, body);
            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["id"] = MessageId(requestId),
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = model,
                ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = reply.Text }),
                ["stop_reason"] = "end_turn",
                ["stop_sequence"] = null,
                ["usage"] = UsageJson(usage, usage.Output),
            }, context.RequestAborted);
            return;
        }
        await StreamAsync(context, answer!, body, model, requestId, hold);
    }

    private static async Task StreamAsync(HttpContext context, AnthropicAnswer answer, JsonObject body, string model, string requestId, Hold? hold)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        var aborted = context.RequestAborted;
        async Task Send(string name, JsonObject data)
        {
            await response.WriteAsync($"event: {name}\ndata: {data.ToJsonString()}\n\n", aborted);
            await response.Body.FlushAsync(aborted);
        }

        var (text, chunks, usage) = answer switch
        {
            AnthropicAnswer.Reply reply => (reply.Text, Math.Max(1, reply.Chunks), UsageOf(reply, body)),
            AnthropicAnswer.BrokenStream broken => (broken.TextBefore, 1, new AnthropicUsage(InputOf(body), 1)),
            _ => throw new InvalidOperationException("not a stream"),
        };
        await Send("message_start", new JsonObject
        {
            ["type"] = "message_start",
            ["message"] = new JsonObject
            {
                ["id"] = MessageId(requestId),
                ["type"] = "message",
                ["role"] = "assistant",
                ["content"] = new JsonArray(),
                ["model"] = model,
                ["stop_reason"] = null,
                ["stop_sequence"] = null,
                ["usage"] = UsageJson(usage, 1),
            },
        });
        await Send("content_block_start", new JsonObject
        {
            ["type"] = "content_block_start",
            ["index"] = 0,
            ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" },
        });
        await Send("ping", new JsonObject { ["type"] = "ping" });
        foreach (var (piece, index) in Split(text, chunks).Select((p, i) => (p, i)))
        {
            await Send("content_block_delta", new JsonObject
            {
                ["type"] = "content_block_delta",
                ["index"] = 0,
                ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = piece },
            });
            if (index == 0 && hold is not null)
            {
                hold.Reached();
                await hold.Released.WaitAsync(aborted);
            }
        }
        if (answer is AnthropicAnswer.BrokenStream failure)
        {
            await Send("error", ErrorJson(failure.Type, failure.Message, null));
            return;
        }
        await Send("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = 0 });
        await Send("message_delta", new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = "end_turn", ["stop_sequence"] = null },
            ["usage"] = new JsonObject { ["output_tokens"] = usage.Output },
        });
        await Send("message_stop", new JsonObject { ["type"] = "message_stop" });
    }

    /// <summary>What the API would refuse in a body, in its words; null when it is fine.</summary>
    private static string? Problem(JsonObject body)
    {
        if (body["model"]?.GetValueKind() != JsonValueKind.String)
        {
            return "model: Field required";
        }
        if (body["max_tokens"] is not JsonValue maxTokens || !maxTokens.TryGetValue<long>(out var max) || max < 1)
        {
            return "max_tokens: Field required (an integer of at least 1)";
        }
        if (body["messages"] is not JsonArray { Count: > 0 } messages)
        {
            return "messages: at least one message is required";
        }
        string? previous = null;
        foreach (var message in messages)
        {
            var role = (string?)message?["role"];
            if (role is not ("user" or "assistant"))
            {
                return $"messages: role must be \"user\" or \"assistant\" (found \"{role}\")";
            }
            if (previous is null && role != "user")
            {
                return "messages: first message must use the \"user\" role";
            }
            if (role == previous)
            {
                return "messages: roles must alternate between \"user\" and \"assistant\"";
            }
            if (string.IsNullOrWhiteSpace(TextOf(message!["content"])))
            {
                return "messages: text content blocks must be non-empty";
            }
            previous = role;
        }
        return body["system"] is { } system && system.GetValueKind() is not (JsonValueKind.String or JsonValueKind.Array)
            ? "system: Input should be a valid string or a list of text blocks"
            : null;
    }

    internal static string TextOf(JsonNode? content) => content switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => (string)value!,
        JsonArray blocks => string.Join("\n", blocks.Where(b => (string?)b?["type"] == "text").Select(b => (string?)b!["text"] ?? "")),
        _ => "",
    };

    private static string LastUserText(JsonObject body) =>
        TextOf(((JsonArray)body["messages"]!).Last(m => (string?)m!["role"] == "user")!["content"]);

    private static long InputOf(JsonObject body) =>
        (body.ToJsonString().Length / 4) + 1;

    private static AnthropicUsage UsageOf(AnthropicAnswer.Reply reply, JsonObject body) =>
        reply.Usage ?? new AnthropicUsage(InputOf(body), (reply.Text.Length / 4) + 1);

    private static JsonObject UsageJson(AnthropicUsage usage, long output) => new()
    {
        ["input_tokens"] = usage.Input,
        ["cache_creation_input_tokens"] = usage.CacheWrite,
        ["cache_read_input_tokens"] = usage.CacheRead,
        ["output_tokens"] = output,
    };

    private static string MessageId(string requestId) => "msg_" + requestId[4..];

    private static IEnumerable<string> Split(string text, int chunks)
    {
        var size = Math.Max(1, (text.Length + chunks - 1) / chunks);
        for (var start = 0; start < text.Length; start += size)
        {
            yield return text.Substring(start, Math.Min(size, text.Length - start));
        }
    }

    private static JsonObject ErrorJson(string type, string message, string? requestId)
    {
        var error = new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = type, ["message"] = message } };
        if (requestId is not null)
        {
            error["request_id"] = requestId;
        }
        return error;
    }

    private static async Task WriteErrorAsync(HttpContext context, int status, string type, string message, string requestId)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["request-id"] = requestId;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(ErrorJson(type, message, requestId).ToJsonString(), Encoding.UTF8, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _hold?.Release();
        }
        await _app.DisposeAsync();
    }

    /// <summary>A stream held after its first delta: <see cref="Arrived"/> completes then, and the
    /// stream goes on at <see cref="Release"/>.</summary>
    public sealed class Hold
    {
        private readonly TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Arrived => _arrived.Task;

        internal Task Released => _released.Task;

        internal void Reached() => _arrived.TrySetResult();

        public void Release() => _released.TrySetResult();
    }
}
