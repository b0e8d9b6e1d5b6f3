namespace Loop.Discord;

using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

/// <summary>Discord answered with an error that retrying will not fix (4xx other than 429).</summary>
public sealed class DiscordApiException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
}

/// <summary>
/// Discord's REST API (v10). Honours the rate limits Discord announces: per-route buckets from the
/// <c>X-RateLimit-*</c> headers (one request at a time per bucket, waiting for the reset when a bucket
/// is spent), 429 answered by waiting <c>retry_after</c> (for every request when it is global), and
/// 5xx or network failures retried with backoff. Requests to one bucket keep their order, so the
/// parts of a reply arrive in order and none is dropped.
/// </summary>
public sealed class DiscordRestClient : IDisposable
{
    private const int MaxServerErrorAttempts = 6;
    private static readonly TimeSpan ResetMargin = TimeSpan.FromMilliseconds(50);
    private readonly HttpClient _http;
    private readonly DiscordOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Dictionary<string, string> _bucketOfRoute = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RateBucket> _buckets = new(StringComparer.Ordinal);
    private DateTimeOffset _globalUntil;

    public DiscordRestClient(DiscordOptions options, TimeProvider time, ILogger<DiscordRestClient> logger, HttpMessageHandler? handler = null)
    {
        _options = options;
        _time = time;
        _logger = logger;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.Timeout = TimeSpan.FromSeconds(30);
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("DiscordBot (https://github.com/loop, 0.1)");
    }

    /// <summary>Posts a message; <paramref name="replyTo"/> makes it a reply to that message. Returns the new message's id.</summary>
    /// <param name="nonce">Up to 25 characters: Discord creates no second message with the same one for a few
    /// minutes, and answers the first (enforce_nonce), so a post repeated after a crash shows once.</param>
    /// <param name="components">Message components (action rows of buttons), if any.</param>
    /// <summary>Start Thread without Message: a public thread in <paramref name="channelId"/>; Discord's channel object of it.</summary>
    public async Task<JsonNode> StartThreadAsync(string channelId, string name, CancellationToken cancellationToken) =>
        await SendAsync(HttpMethod.Post, $"channels/{channelId}/threads", new JsonObject
        {
            ["name"] = name,
            ["type"] = 11, // PUBLIC_THREAD
            ["auto_archive_duration"] = 10080, // a week without messages
        }, cancellationToken) ?? throw new InvalidOperationException("Discord answered Start Thread with no channel");

    public async Task<string> CreateMessageAsync(string channelId, string content, string? replyTo, CancellationToken cancellationToken, string? nonce = null,
        JsonArray? components = null)
    {
        var body = new JsonObject
        {
            ["content"] = content,
            // Agent output may contain @everyone or role mentions: ping only the person replied to.
            ["allowed_mentions"] = new JsonObject { ["parse"] = new JsonArray(), ["replied_user"] = true },
        };
        if (components is not null)
        {
            body["components"] = components;
        }
        if (nonce is not null)
        {
            body["nonce"] = nonce;
            body["enforce_nonce"] = true;
        }
        if (replyTo is not null)
        {
            body["message_reference"] = new JsonObject { ["message_id"] = replyTo, ["channel_id"] = channelId, ["fail_if_not_exists"] = false };
        }
        var message = await SendAsync(HttpMethod.Post, $"channels/{channelId}/messages", body, cancellationToken);
        return (string?)message?["id"] ?? "";
    }

    /// <summary>Replaces a message's text and components (an empty array removes them).</summary>
    public Task EditMessageAsync(string channelId, string messageId, string content, JsonArray components, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Patch, $"channels/{channelId}/messages/{messageId}", new JsonObject
        {
            ["content"] = content,
            ["components"] = components,
            ["allowed_mentions"] = new JsonObject { ["parse"] = new JsonArray() },
        }, cancellationToken);

    public Task TriggerTypingAsync(string channelId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"channels/{channelId}/typing", null, cancellationToken);

    public async Task<JsonArray> ListGuildChannelsAsync(string guildId, CancellationToken cancellationToken) =>
        (await SendAsync(HttpMethod.Get, $"guilds/{guildId}/channels", null, cancellationToken))?.AsArray() ?? [];

    /// <summary>Creates a text channel (type 0); returns its id.</summary>
    public async Task<string> CreateTextChannelAsync(string guildId, string name, string? topic, CancellationToken cancellationToken)
    {
        var channel = await SendAsync(HttpMethod.Post, $"guilds/{guildId}/channels",
            new JsonObject { ["name"] = name, ["type"] = 0, ["topic"] = topic }, cancellationToken);
        return (string?)channel?["id"] ?? throw new DiscordApiException(HttpStatusCode.OK, "Discord created a channel but returned no id");
    }

    /// <summary>Replaces the application's commands (in one guild, or globally when <paramref name="guildId"/> is null).</summary>
    public Task BulkOverwriteCommandsAsync(string appId, string? guildId, JsonArray commands, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Put, guildId is null ? $"applications/{appId}/commands" : $"applications/{appId}/guilds/{guildId}/commands", commands, cancellationToken);

    /// <summary>The first answer to an interaction (within 3 s): a deferral, a message or autocomplete choices.</summary>
    public Task RespondToInteractionAsync(string interactionId, string interactionToken, JsonObject response, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"interactions/{interactionId}/{interactionToken}/callback", response, cancellationToken, authorize: false);

    /// <summary>Fills in a deferred response ("Loop is thinking…").</summary>
    public Task EditOriginalResponseAsync(string appId, string interactionToken, string content, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Patch, $"webhooks/{appId}/{interactionToken}/messages/@original",
            new JsonObject { ["content"] = content, ["allowed_mentions"] = new JsonObject { ["parse"] = new JsonArray() } }, cancellationToken, authorize: false);

    /// <summary>A further message after the response (e.g. the second part of a long answer).</summary>
    public Task CreateFollowupAsync(string appId, string interactionToken, string content, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"webhooks/{appId}/{interactionToken}",
            new JsonObject { ["content"] = content, ["allowed_mentions"] = new JsonObject { ["parse"] = new JsonArray() } }, cancellationToken, authorize: false);

    /// <summary>Sends one request, waiting out rate limits and retrying server errors. Returns the JSON body (null when empty).</summary>
    public async Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken, bool authorize = true)
    {
        var route = RouteKey(method, path);
        var bucket = BucketFor(route, path);
        // The bucket is held through waits and retries, so requests to it keep their order.
        await bucket.Gate.WaitAsync(cancellationToken);
        try
        {
            var serverErrors = 0;
            while (true)
            {
                await WaitAsync(GlobalUntil(), cancellationToken);
                // A little past the reset: timers may fire a millisecond early, and Discord rounds reset times.
                await WaitAsync(bucket.Remaining <= 0 ? bucket.ResetAt + ResetMargin : default, cancellationToken);

                HttpResponseMessage response;
                try
                {
                    using var request = new HttpRequestMessage(method, new Uri(_options.ApiUrl.AbsoluteUri.TrimEnd('/') + "/" + path));
                    if (authorize)
                    {
                        request.Headers.Authorization = new AuthenticationHeaderValue("Bot", _options.Token);
                    }
                    if (body is not null)
                    {
                        request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
                    }
                    response = await _http.SendAsync(request, cancellationToken);
                }
                catch (Exception error) when (error is HttpRequestException || (error is TaskCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    serverErrors++;
                    if (serverErrors >= MaxServerErrorAttempts)
                    {
                        throw;
                    }
                    _logger.LogWarning("Discord {Method} {Route} failed ({Error}); retry {Attempt}", method, route, error.Message, serverErrors);
                    await Task.Delay(Backoff(serverErrors), _time, cancellationToken);
                    continue;
                }

                using (response)
                {
                    var text = await response.Content.ReadAsStringAsync(cancellationToken);
                    var json = string.IsNullOrWhiteSpace(text) ? null : TryParse(text);
                    Learn(route, path, bucket, response);
                    if (response.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        var retryAfter = RetryAfter(response, json);
                        var global = (bool?)json?["global"] == true || response.Headers.Contains("X-RateLimit-Global");
                        var until = _time.GetUtcNow() + retryAfter;
                        if (global)
                        {
                            lock (_gate)
                            {
                                _globalUntil = until > _globalUntil ? until : _globalUntil;
                            }
                        }
                        else
                        {
                            bucket.Remaining = 0;
                            bucket.ResetAt = until;
                        }
                        _logger.LogWarning("Discord rate limit on {Route} ({Scope}): waiting {RetryAfterMs} ms", route, global ? "global" : "route", retryAfter.TotalMilliseconds);
                        continue;
                    }
                    if ((int)response.StatusCode >= 500)
                    {
                        serverErrors++;
                        if (serverErrors >= MaxServerErrorAttempts)
                        {
                            throw new DiscordApiException(response.StatusCode, $"Discord answered {(int)response.StatusCode} to {method} {route} {serverErrors} times");
                        }
                        _logger.LogWarning("Discord {Method} {Route} answered {Status}; retry {Attempt}", method, route, (int)response.StatusCode, serverErrors);
                        await Task.Delay(Backoff(serverErrors), _time, cancellationToken);
                        continue;
                    }
                    if (!response.IsSuccessStatusCode)
                    {
                        var message = (string?)json?["message"] ?? text;
                        throw new DiscordApiException(response.StatusCode, $"Discord refused {method} {route}: {(int)response.StatusCode} {message}");
                    }
                    return json;
                }
            }
        }
        finally
        {
            bucket.Gate.Release();
        }
    }

    private TimeSpan Backoff(int attempt) =>
        TimeSpan.FromMilliseconds(Math.Min(_options.Timings.ServerError.TotalMilliseconds * Math.Pow(2, attempt - 1), 30_000));

    private DateTimeOffset GlobalUntil()
    {
        lock (_gate)
        {
            return _globalUntil;
        }
    }

    private async Task WaitAsync(DateTimeOffset until, CancellationToken cancellationToken)
    {
        var wait = until - _time.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _time, cancellationToken);
        }
    }

    private static TimeSpan RetryAfter(HttpResponseMessage response, JsonNode? json)
    {
        if (json?["retry_after"] is JsonValue value && value.TryGetValue<double>(out var seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }
        if (response.Headers.TryGetValues("Retry-After", out var header) && double.TryParse(header.First(), NumberStyles.Float, CultureInfo.InvariantCulture, out seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }
        return TimeSpan.FromSeconds(1);
    }

    /// <summary>Reads the bucket Discord put this route in and how much of it is left.</summary>
    private void Learn(string route, string path, RateBucket bucket, HttpResponseMessage response)
    {
        if (Header(response, "X-RateLimit-Bucket") is { } hash)
        {
            lock (_gate)
            {
                _bucketOfRoute[route] = hash;
                // Later requests of this route share the bucket Discord named; this one is it from now on.
                _buckets.TryAdd(hash + " " + MajorParameters(path), bucket);
            }
        }
        if (Header(response, "X-RateLimit-Remaining") is { } remaining && int.TryParse(remaining, out var left))
        {
            bucket.Remaining = left;
        }
        if (Header(response, "X-RateLimit-Reset-After") is { } resetAfter
            && double.TryParse(resetAfter, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            bucket.ResetAt = _time.GetUtcNow() + TimeSpan.FromSeconds(seconds);
        }
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    private RateBucket BucketFor(string route, string path)
    {
        var major = MajorParameters(path);
        lock (_gate)
        {
            var key = (_bucketOfRoute.TryGetValue(route, out var hash) ? hash : route) + " " + major;
            if (!_buckets.TryGetValue(key, out var bucket))
            {
                bucket = new RateBucket();
                _buckets[key] = bucket;
            }
            return bucket;
        }
    }

    /// <summary>The route as Discord counts it: method and path with ids replaced, except the
    /// top-level resources (channel, guild, webhook and its token) that limits are kept per.</summary>
    internal static string RouteKey(HttpMethod method, string path)
    {
        var segments = path.Split('?')[0].Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var previous = i > 0 ? segments[i - 1] : "";
            var major = previous is "channels" or "guilds" or "webhooks" || (i > 1 && segments[i - 2] == "webhooks");
            if (!major && (segments[i].All(char.IsAsciiDigit) && segments[i].Length > 0 || previous == "interactions" || (i > 1 && segments[i - 2] == "interactions")))
            {
                segments[i] = ":id";
            }
        }
        return method.Method + " /" + string.Join('/', segments);
    }

    private static string MajorParameters(string path)
    {
        var segments = path.Split('?')[0].Split('/');
        var major = new List<string>();
        for (var i = 1; i < segments.Length; i++)
        {
            if (segments[i - 1] is "channels" or "guilds" or "webhooks")
            {
                major.Add(segments[i]);
            }
        }
        return string.Join(':', major);
    }

    private static JsonNode? TryParse(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    public void Dispose() => _http.Dispose();

    private sealed class RateBucket
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public int Remaining { get; set; } = 1;
        public DateTimeOffset ResetAt { get; set; }
    }
}
