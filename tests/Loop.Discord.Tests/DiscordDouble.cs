namespace Loop.Discord.Tests;

using System.Collections.Concurrent;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>One REST request the double received, as Discord would have seen it.</summary>
public sealed record RestCall(string Method, string Path, string? Authorization, JsonNode? Body, DateTimeOffset At, int Status);

/// <summary>
/// A local Discord: a gateway (WebSocket, v10 JSON) and the REST endpoints the bot uses, on
/// loopback, answering with the payloads and headers Discord documents. Tests drive it (send
/// dispatches, drop connections, withhold heartbeat ACKs, inject 429/5xx) and read what it received.
/// </summary>
public sealed class DiscordDouble : IAsyncDisposable
{
    public const string Token = "test-bot-token.XYZ";
    public const string AppId = "100000000000000001";
    public const string BotId = "200000000000000002";
    public const string GuildId = "300000000000000003";
    public const string GeneralChannel = "400000000000000004";
    public const string UserId = "500000000000000005";
    public const string OtherBotId = "600000000000000006";

    private readonly WebApplication _app;
    private readonly object _gate = new();
    private readonly List<RestCall> _calls = [];
    private readonly List<GatewayConnection> _connections = [];
    private readonly List<(string Method, string PathPrefix, int Status, JsonObject? Body, Dictionary<string, string> Headers)> _failures = [];
    private readonly Stalls _stalls = new();
    private readonly Stalls _answerStalls = new();
    private readonly Dictionary<string, (int Used, DateTimeOffset WindowEnd)> _messageBuckets = new(StringComparer.Ordinal);
    private readonly List<JsonObject> _guildChannels = [];
    private readonly List<(string Channel, string? Nonce, JsonNode Body, JsonObject Message)> _posted = [];
    private readonly List<(string MessageId, JsonNode Body, DateTimeOffset At)> _edits = [];
    private readonly Dictionary<string, DateTimeOffset> _interactionsSent = new(StringComparer.Ordinal);
    private readonly HashSet<string> _sessions = new(StringComparer.Ordinal);
    private long _snowflake = 900000000000000000;
    private long _sequence;

    private DiscordDouble(WebApplication app)
    {
        _app = app;
        _guildChannels.Add(Channel(GeneralChannel, "general"));
    }

    public static async Task<DiscordDouble> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var discord = new DiscordDouble(app);
        app.UseWebSockets();
        app.Map("/gateway", discord.AcceptGatewayAsync);
        app.Map("/resume-gateway", discord.AcceptGatewayAsync);
        app.Map("/api/v10/{**path}", discord.HandleRestAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        discord.BaseUrl = address.TrimEnd('/');
        return discord;
    }

    public string BaseUrl { get; private set; } = "";
    public string ApiUrl => BaseUrl + "/api/v10";
    public string GatewayUrl => BaseUrl.Replace("http://", "ws://") + "/gateway";
    public string ResumeGatewayUrl => BaseUrl.Replace("http://", "ws://") + "/resume-gateway";

    /// <summary>Sent in HELLO.</summary>
    public int HeartbeatIntervalMs { get; set; } = 41250;

    /// <summary>When false, heartbeats go unanswered (a zombied connection).</summary>
    public bool AckHeartbeats { get; set; } = true;

    /// <summary>Sent instead of READY after the next IDENTIFY (then cleared), e.g. 4014.</summary>
    public int? CloseOnIdentify { get; set; }

    /// <summary>When false, READY is not followed by GUILD_CREATE: the test sends the guild (its
    /// channel list) when it wants, e.g. after a message, as a busy gateway may.</summary>
    public bool SendGuildAfterReady { get; set; } = true;

    /// <summary>Per-channel message limit (Discord: 5 per 5 s); shortened here.</summary>
    public int MessageLimit { get; set; } = 5;
    public TimeSpan MessageWindow { get; set; } = TimeSpan.FromSeconds(1);

    public IReadOnlyList<RestCall> Calls
    {
        get { lock (_gate) { return _calls.ToList(); } }
    }

    public IReadOnlyList<GatewayConnection> Connections
    {
        get { lock (_gate) { return _connections.ToList(); } }
    }

    /// <summary>The bodies of the messages the bot posted in a channel, in order; a post Discord answered
    /// with an earlier message of the same nonce (enforce_nonce) made none.</summary>
    public IReadOnlyList<JsonNode> MessagesIn(string channelId)
    {
        lock (_gate)
        {
            return _posted.Where(p => p.Channel == channelId).Select(p => p.Body).ToList();
        }
    }

    /// <summary>The messages the bot posted in a channel as they are now (ids, content and components
    /// after every edit), in the order they were posted.</summary>
    public IReadOnlyList<JsonObject> CurrentMessagesIn(string channelId)
    {
        lock (_gate)
        {
            return _posted.Where(p => p.Channel == channelId).Select(p => (JsonObject)p.Message.DeepClone()).ToList();
        }
    }

    /// <summary>The bodies of the edits (PATCH) of a message that Discord accepted, in order, with when they came.</summary>
    public IReadOnlyList<(JsonNode Body, DateTimeOffset At)> EditsOf(string messageId)
    {
        lock (_gate)
        {
            return _edits.Where(e => e.MessageId == messageId).Select(e => (e.Body, e.At)).ToList();
        }
    }

    public IReadOnlyList<JsonObject> GuildChannels
    {
        get { lock (_gate) { return _guildChannels.Select(c => (JsonObject)c.DeepClone()).ToList(); } }
    }

    /// <summary>The next request matching method and path prefix is answered with this instead.</summary>
    public void FailNext(string method, string pathPrefix, int status, JsonObject? body = null, Dictionary<string, string>? headers = null)
    {
        lock (_gate)
        {
            _failures.Add((method, pathPrefix, status, body, headers ?? []));
        }
    }

    /// <summary>The next request matching method and path prefix is held unanswered, as a network that
    /// stopped delivering would, until its caller gives up; nothing it asked for happens. The task
    /// completes when the request has arrived.</summary>
    public Task StallNext(string method, string pathPrefix) =>
        _stalls.Next(call => call.StartsWith(method + " " + pathPrefix, StringComparison.Ordinal));

    /// <summary>The next request matching is done (a message is created) but its answer never leaves.</summary>
    public Task StallAnswerToNext(string method, string pathPrefix) =>
        _answerStalls.Next(call => call.StartsWith(method + " " + pathPrefix, StringComparison.Ordinal));

    public void AddGuildChannel(string id, string name)
    {
        lock (_gate)
        {
            _guildChannels.Add(Channel(id, name));
        }
    }

    public string NewSnowflake() => Interlocked.Increment(ref _snowflake).ToString(CultureInfo.InvariantCulture);

    public async Task<GatewayConnection> WaitForConnectionAsync(int index, TimeSpan? timeout = null)
    {
        await Eventually.WaitAsync(() => Connections.Count > index, $"gateway connection #{index + 1}", timeout);
        return Connections[index];
    }

    /// <summary>Waits for the bot to connect and identify, and returns the connection once READY
    /// (and GUILD_CREATE, unless withheld) went out: what a test sends next comes after them.</summary>
    public async Task<GatewayConnection> WaitForReadyAsync(int index = 0)
    {
        var connection = await WaitForConnectionAsync(index);
        await Eventually.WaitAsync(() => connection.ReadySent && (connection.GuildSent || !SendGuildAfterReady), "READY");
        return connection;
    }

    public async Task<IReadOnlyList<JsonNode>> WaitForMessagesAsync(string channelId, int count, TimeSpan? timeout = null)
    {
        await Eventually.WaitAsync(() => MessagesIn(channelId).Count >= count, $"{count} message(s) in {channelId}", timeout ?? TimeSpan.FromSeconds(30));
        return MessagesIn(channelId);
    }

    internal long NextSequence() => Interlocked.Increment(ref _sequence);

    internal JsonObject ReadyFor(string sessionId)
    {
        lock (_gate)
        {
            _sessions.Add(sessionId);
        }
        return new JsonObject
        {
            ["v"] = 10,
            ["user"] = new JsonObject { ["id"] = BotId, ["username"] = "loop", ["discriminator"] = "0", ["global_name"] = null, ["avatar"] = null, ["bot"] = true },
            ["guilds"] = new JsonArray(new JsonObject { ["id"] = GuildId, ["unavailable"] = true }),
            ["session_id"] = sessionId,
            ["resume_gateway_url"] = ResumeGatewayUrl,
            ["shard"] = new JsonArray(0, 1),
            ["application"] = new JsonObject { ["id"] = AppId, ["flags"] = 0 },
        };
    }

    /// <summary>The GUILD_CREATE payload: the guild with its channels.</summary>
    public JsonObject GuildCreate()
    {
        lock (_gate)
        {
            return new JsonObject
            {
                ["id"] = GuildId,
                ["name"] = "Test guild",
                ["unavailable"] = false,
                ["channels"] = new JsonArray(_guildChannels.Select(c => (JsonNode)c.DeepClone()).ToArray()),
            };
        }
    }

    internal bool KnowsSession(string? sessionId)
    {
        lock (_gate)
        {
            return sessionId is not null && _sessions.Contains(sessionId);
        }
    }

    /// <summary>Forgets every session, so a RESUME is refused with INVALID_SESSION (d: false).</summary>
    public void InvalidateSessions()
    {
        lock (_gate)
        {
            _sessions.Clear();
        }
    }

    private async Task AcceptGatewayAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            return;
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = new GatewayConnection(this, socket, context.Request.Path + context.Request.QueryString);
        lock (_gate)
        {
            _connections.Add(connection);
        }
        await connection.RunAsync(context.RequestAborted);
    }

    private async Task HandleRestAsync(HttpContext context)
    {
        var path = (string)context.Request.RouteValues["path"]!;
        var method = context.Request.Method;
        var authorization = context.Request.Headers.Authorization.FirstOrDefault();
        JsonNode? body = null;
        if (context.Request.ContentLength > 0 || context.Request.Headers.ContentType.Count > 0)
        {
            var text = await new StreamReader(context.Request.Body).ReadToEndAsync();
            body = text.Length == 0 ? null : JsonNode.Parse(text);
        }
        if (await _stalls.HoldAsync(method + " " + path, context.RequestAborted))
        {
            return;
        }
        var (status, response, headers) = Answer(method, path, authorization, body);
        lock (_gate)
        {
            _calls.Add(new RestCall(method, path, authorization, body, DateTimeOffset.UtcNow, status));
        }
        if (await _answerStalls.HoldAsync(method + " " + path, context.RequestAborted))
        {
            return;
        }
        context.Response.StatusCode = status;
        foreach (var (name, value) in headers)
        {
            context.Response.Headers[name] = value;
        }
        if (response is not null)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(response.ToJsonString());
        }
    }

    private (int Status, JsonNode? Body, Dictionary<string, string> Headers) Answer(string method, string path, string? authorization, JsonNode? body)
    {
        var needsBot = !path.StartsWith("interactions/", StringComparison.Ordinal) && !path.StartsWith("webhooks/", StringComparison.Ordinal);
        if (needsBot && authorization != "Bot " + Token)
        {
            return (401, new JsonObject { ["message"] = "401: Unauthorized", ["code"] = 0 }, []);
        }
        lock (_gate)
        {
            var failure = _failures.FindIndex(f => f.Method == method && path.StartsWith(f.PathPrefix, StringComparison.Ordinal));
            if (failure >= 0)
            {
                var (_, _, status, failBody, headers) = _failures[failure];
                _failures.RemoveAt(failure);
                return (status, failBody, headers);
            }
        }
        var segments = path.Split('/');
        switch (method, segments)
        {
            case ("POST", ["channels", var channel, "messages"]):
                return PostMessage(channel, body!);
            case ("POST", ["channels", _, "typing"]):
                return (204, null, []);
            case ("PATCH", ["channels", var channel, "messages", var messageId]):
                return EditMessage(channel, messageId, body!);
            case ("PUT", ["applications", AppId, "commands"]):
            case ("PUT", ["applications", AppId, "guilds", _, "commands"]):
                var commands = body!.AsArray().Select(c =>
                {
                    var command = c!.DeepClone().AsObject();
                    command["id"] = NewSnowflake();
                    command["application_id"] = AppId;
                    command["version"] = NewSnowflake();
                    return (JsonNode)command;
                }).ToArray();
                return (200, new JsonArray(commands), []);
            case ("POST", ["interactions", var interactionId, _, "callback"]):
                return InteractionCallback(interactionId, body!);
            case ("PATCH", ["webhooks", AppId, _, "messages", "@original"]):
            case ("POST", ["webhooks", AppId, _]):
                return (200, Message(NewSnowflake(), "0", (string?)body?["content"] ?? "", null), []);
            case ("GET", ["guilds", GuildId, "channels"]):
                return (200, new JsonArray(GuildChannels.Select(c => (JsonNode)c).ToArray()), []);
            case ("POST", ["channels", var parent, "threads"]):
                return StartThread(parent, body!);
            case ("POST", ["guilds", GuildId, "channels"]):
                var created = Channel(NewSnowflake(), (string)body!["name"]!);
                created["topic"] = (string?)body["topic"];
                lock (_gate)
                {
                    _guildChannels.Add(created);
                }
                return (201, created.DeepClone(), []);
            default:
                return (404, new JsonObject { ["message"] = "404: Not Found", ["code"] = 0 }, []);
        }
    }

    /// <summary>Create Message with Discord's per-channel bucket: X-RateLimit-* on every answer, 429 when spent.</summary>
    private (int, JsonNode?, Dictionary<string, string>) PostMessage(string channel, JsonNode body)
    {
        var now = DateTimeOffset.UtcNow;
        int used;
        DateTimeOffset windowEnd;
        lock (_gate)
        {
            var (u, end) = _messageBuckets.GetValueOrDefault(channel);
            if (end <= now)
            {
                (u, end) = (0, now + MessageWindow);
            }
            used = u + 1;
            windowEnd = end;
            if (used <= MessageLimit)
            {
                _messageBuckets[channel] = (used, end);
            }
        }
        var resetAfter = (Math.Ceiling((windowEnd - now).TotalMilliseconds) / 1000).ToString("0.000", CultureInfo.InvariantCulture);
        var headers = new Dictionary<string, string>
        {
            ["X-RateLimit-Limit"] = MessageLimit.ToString(CultureInfo.InvariantCulture),
            ["X-RateLimit-Remaining"] = Math.Max(0, MessageLimit - used).ToString(CultureInfo.InvariantCulture),
            ["X-RateLimit-Reset"] = (windowEnd.ToUnixTimeMilliseconds() / 1000.0).ToString("0.000", CultureInfo.InvariantCulture),
            ["X-RateLimit-Reset-After"] = resetAfter,
            ["X-RateLimit-Bucket"] = "c2f3c9d0e1a24b8e9f7d6c5b4a392817",
        };
        if (used > MessageLimit)
        {
            headers["X-RateLimit-Scope"] = "user";
            headers["Retry-After"] = Math.Ceiling((windowEnd - now).TotalSeconds).ToString(CultureInfo.InvariantCulture);
            return (429, new JsonObject { ["message"] = "You are being rate limited.", ["retry_after"] = (windowEnd - now).TotalSeconds, ["global"] = false }, headers);
        }
        if (ComponentsProblem(body["components"]) is { } problem)
        {
            return InvalidFormBody(problem);
        }
        var reference = (string?)body["message_reference"]?["message_id"];
        var nonce = body["nonce"]?.ToString();
        lock (_gate)
        {
            // "If another message was created by the same author with the same nonce, that message will be
            // returned and no new message will be created" (enforce_nonce; Discord keeps nonces a few minutes).
            if (nonce is not null && (bool?)body["enforce_nonce"] == true
                && _posted.FirstOrDefault(p => p.Channel == channel && p.Nonce == nonce) is { Message: { } earlier })
            {
                return (200, earlier.DeepClone(), headers);
            }
            var message = Message(NewSnowflake(), channel, (string?)body["content"] ?? "", reference);
            message["nonce"] = nonce;
            message["components"] = body["components"]?.DeepClone() ?? new JsonArray();
            _posted.Add((channel, nonce, body.DeepClone(), message));
            return (200, message.DeepClone(), headers);
        }
    }

    /// <summary>Edit Message: only the bot's own messages, in the channel they are in; the fields given replace
    /// theirs (an empty components array removes the buttons), and the message is returned.</summary>
    private (int, JsonNode?, Dictionary<string, string>) EditMessage(string channel, string messageId, JsonNode body)
    {
        if (ComponentsProblem(body["components"]) is { } problem)
        {
            return InvalidFormBody(problem);
        }
        lock (_gate)
        {
            if (_posted.FirstOrDefault(p => p.Channel == channel && (string?)p.Message["id"] == messageId) is not { Message: { } message })
            {
                return (404, new JsonObject { ["message"] = "Unknown Message", ["code"] = 10008 }, []);
            }
            Apply(message, body);
            _edits.Add((messageId, body.DeepClone(), DateTimeOffset.UtcNow));
            return (200, message.DeepClone(), []);
        }
    }

    private static void Apply(JsonObject message, JsonNode changes)
    {
        if (changes["content"] is { } content)
        {
            message["content"] = content.DeepClone();
        }
        if (changes["components"] is { } components)
        {
            message["components"] = components.DeepClone();
        }
        message["edited_timestamp"] = DateTimeOffset.UtcNow.ToString("O");
    }

    /// <summary>Discord's callback rules: one response per interaction, within 3 s of it (after that the token
    /// is unknown: 10062); UPDATE_MESSAGE (7) edits the message the component is on.</summary>
    private (int, JsonNode?, Dictionary<string, string>) InteractionCallback(string interactionId, JsonNode body)
    {
        lock (_gate)
        {
            if (!_interactionsSent.Remove(interactionId, out var sentAt))
            {
                // Sent by a test that builds its own payloads, or answered already.
                return _calls.Any(c => c.Path.StartsWith($"interactions/{interactionId}/", StringComparison.Ordinal))
                    ? (400, new JsonObject { ["message"] = "Interaction has already been acknowledged.", ["code"] = 40060 }, [])
                    : (204, null, []);
            }
            if (DateTimeOffset.UtcNow - sentAt > TimeSpan.FromSeconds(3))
            {
                return (404, new JsonObject { ["message"] = "Unknown interaction", ["code"] = 10062 }, []);
            }
            if ((int?)body["type"] == 7 && _componentMessages.TryGetValue(interactionId, out var messageId)
                && _posted.FirstOrDefault(p => (string?)p.Message["id"] == messageId) is { Message: { } message })
            {
                Apply(message, body["data"] ?? new JsonObject());
            }
            return (204, null, []);
        }
    }

    /// <summary>What Discord checks of message components: action rows (1) of up to 5 buttons (2); a button
    /// that is not a link (style 1 to 4) has a custom_id of 1 to 100 characters; a label has at most 80.</summary>
    private static string? ComponentsProblem(JsonNode? components)
    {
        if (components is null)
        {
            return null;
        }
        if (components is not JsonArray rows || rows.Count > 5)
        {
            return "components: must be an array of at most 5 action rows";
        }
        foreach (var row in rows)
        {
            if ((int?)row?["type"] != 1 || row["components"] is not JsonArray buttons || buttons.Count is 0 or > 5)
            {
                return "components.0: an action row (type 1) holds 1 to 5 components";
            }
            foreach (var button in buttons)
            {
                if ((int?)button?["type"] != 2 || (int?)button["style"] is not (>= 1 and <= 5))
                {
                    return "components.0.components.0: a button (type 2) has a style from 1 to 5";
                }
                if ((int?)button["style"] != 5 && ((string?)button["custom_id"])?.Length is not (>= 1 and <= 100))
                {
                    return "components.0.components.0.custom_id: must be 1 to 100 characters";
                }
                if (((string?)button["label"])?.Length > 80)
                {
                    return "components.0.components.0.label: must be at most 80 characters";
                }
            }
        }
        return null;
    }

    private static (int, JsonNode?, Dictionary<string, string>) InvalidFormBody(string problem) =>
        (400, new JsonObject { ["message"] = "Invalid Form Body", ["code"] = 50035, ["errors"] = new JsonObject { ["problem"] = problem } }, []);

    /// <summary>Start Thread without Message: the thread's channel object, and THREAD_CREATE to the bot
    /// (the creator is a member of the thread it made).</summary>
    private (int, JsonNode?, Dictionary<string, string>) StartThread(string parent, JsonNode body)
    {
        var name = (string?)body["name"];
        if (name is not { Length: >= 1 and <= 100 } || (int?)body["type"] is not (10 or 11 or 12))
        {
            return InvalidFormBody("name must be 1 to 100 characters and type a thread type (10, 11 or 12)");
        }
        var thread = ThreadCreate(parent, name, BotId, (int)body["type"]!);
        thread.Remove("newly_created");
        var connection = Connections.LastOrDefault(c => c.ReadySent);
        if (connection is not null)
        {
            var dispatched = ThreadCreate(parent, name, BotId, (int)body["type"]!);
            dispatched["id"] = thread["id"]!.DeepClone();
            _ = connection.DispatchAsync("THREAD_CREATE", dispatched);
        }
        return (201, thread, []);
    }

    /// <summary>A thread's channel object as THREAD_CREATE brings it when someone starts a thread.</summary>
    public JsonObject ThreadCreate(string parentId, string name, string ownerId = UserId, int type = 11) => new()
    {
        ["id"] = NewSnowflake(),
        ["type"] = type,
        ["guild_id"] = GuildId,
        ["parent_id"] = parentId,
        ["owner_id"] = ownerId,
        ["name"] = name,
        ["last_message_id"] = null,
        ["rate_limit_per_user"] = 0,
        ["message_count"] = 0,
        ["member_count"] = 1,
        ["thread_metadata"] = new JsonObject
        {
            ["archived"] = false,
            ["auto_archive_duration"] = 10080,
            ["archive_timestamp"] = DateTimeOffset.UtcNow.ToString("O"),
            ["locked"] = false,
        },
        ["newly_created"] = true,
    };

    private static JsonObject Channel(string id, string name) => new()
    {
        ["id"] = id,
        ["type"] = 0,
        ["guild_id"] = GuildId,
        ["name"] = name,
        ["position"] = 0,
        ["permission_overwrites"] = new JsonArray(),
        ["parent_id"] = null,
        ["nsfw"] = false,
    };

    private static JsonObject Message(string id, string channel, string content, string? reference)
    {
        var message = new JsonObject
        {
            ["id"] = id,
            ["channel_id"] = channel,
            ["author"] = new JsonObject { ["id"] = BotId, ["username"] = "loop", ["discriminator"] = "0", ["avatar"] = null, ["bot"] = true },
            ["content"] = content,
            ["timestamp"] = DateTimeOffset.UtcNow.ToString("O"),
            ["edited_timestamp"] = null,
            ["tts"] = false,
            ["mention_everyone"] = false,
            ["mentions"] = new JsonArray(),
            ["mention_roles"] = new JsonArray(),
            ["attachments"] = new JsonArray(),
            ["embeds"] = new JsonArray(),
            ["pinned"] = false,
            ["type"] = reference is null ? 0 : 19,
        };
        if (reference is not null)
        {
            message["message_reference"] = new JsonObject { ["type"] = 0, ["message_id"] = reference, ["channel_id"] = channel };
        }
        return message;
    }

    /// <summary>A MESSAGE_CREATE payload as Discord sends it.</summary>
    public JsonObject MessageCreate(string channelId, string content, string authorId = UserId, string authorName = "alice", bool bot = false,
        bool inGuild = true, bool mentionsBot = false, string? replyToBotMessage = null)
    {
        var author = new JsonObject { ["id"] = authorId, ["username"] = authorName, ["discriminator"] = "0", ["global_name"] = authorName == "alice" ? "Alice" : null, ["avatar"] = null };
        if (bot)
        {
            author["bot"] = true;
        }
        var message = new JsonObject
        {
            ["id"] = NewSnowflake(),
            ["channel_id"] = channelId,
            ["author"] = author,
            ["content"] = content,
            ["timestamp"] = DateTimeOffset.UtcNow.ToString("O"),
            ["edited_timestamp"] = null,
            ["tts"] = false,
            ["mention_everyone"] = false,
            ["mentions"] = mentionsBot
                ? new JsonArray(new JsonObject { ["id"] = BotId, ["username"] = "loop", ["discriminator"] = "0", ["avatar"] = null, ["bot"] = true })
                : new JsonArray(),
            ["mention_roles"] = new JsonArray(),
            ["attachments"] = new JsonArray(),
            ["embeds"] = new JsonArray(),
            ["pinned"] = false,
            ["type"] = replyToBotMessage is null ? 0 : 19,
        };
        if (inGuild)
        {
            message["guild_id"] = GuildId;
            message["member"] = new JsonObject { ["roles"] = new JsonArray(), ["joined_at"] = "2024-01-01T00:00:00.000000+00:00" };
        }
        if (replyToBotMessage is not null)
        {
            message["message_reference"] = new JsonObject { ["type"] = 0, ["message_id"] = replyToBotMessage, ["channel_id"] = channelId, ["guild_id"] = inGuild ? GuildId : null };
            message["referenced_message"] = Message(replyToBotMessage, channelId, "an earlier answer", null);
        }
        return message;
    }

    /// <summary>An INTERACTION_CREATE payload for <c>/loop …</c> (type 2 command, or 4 autocomplete).</summary>
    public JsonObject Interaction(string channelId, JsonArray options, int type = 2, string channelName = "general")
    {
        return new JsonObject
        {
            ["id"] = NewSnowflake(),
            ["application_id"] = AppId,
            ["type"] = type,
            ["data"] = new JsonObject { ["id"] = "700000000000000007", ["name"] = "loop", ["type"] = 1, ["options"] = options },
            ["guild_id"] = GuildId,
            ["channel_id"] = channelId,
            ["channel"] = new JsonObject { ["id"] = channelId, ["type"] = 0, ["guild_id"] = GuildId, ["name"] = channelName },
            ["member"] = Alice(),
            ["token"] = "aW50ZXJhY3Rpb246" + NewSnowflake(),
            ["version"] = 1,
            ["locale"] = "en-US",
            ["app_permissions"] = "2147483647",
        };
    }

    /// <summary>The guild member who sends the interactions: alice, with no roles.</summary>
    private static JsonObject Alice() => new()
    {
        ["user"] = new JsonObject { ["id"] = UserId, ["username"] = "alice", ["discriminator"] = "0", ["avatar"] = null },
        ["roles"] = new JsonArray(),
        ["permissions"] = "2147483647",
    };

    private readonly Dictionary<string, string> _componentMessages = new(StringComparer.Ordinal);

    /// <summary>An INTERACTION_CREATE payload for a click on a button (type 3, component_type 2) of one of
    /// the bot's messages, by alice; its 3 s to be answered start now.</summary>
    public JsonObject ButtonClick(string channelId, JsonObject message, string customId)
    {
        var id = NewSnowflake();
        lock (_gate)
        {
            _interactionsSent[id] = DateTimeOffset.UtcNow;
            _componentMessages[id] = (string)message["id"]!;
        }
        return new JsonObject
        {
            ["id"] = id,
            ["application_id"] = AppId,
            ["type"] = 3,
            ["data"] = new JsonObject { ["custom_id"] = customId, ["component_type"] = 2 },
            ["guild_id"] = GuildId,
            ["channel_id"] = channelId,
            ["channel"] = new JsonObject { ["id"] = channelId, ["type"] = 0, ["guild_id"] = GuildId },
            ["message"] = message.DeepClone(),
            ["member"] = Alice(),
            ["token"] = "aW50ZXJhY3Rpb246" + NewSnowflake(),
            ["version"] = 1,
            ["locale"] = "en-US",
            ["app_permissions"] = "2147483647",
        };
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in Connections)
        {
            connection.Abort();
        }
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One gateway connection, from the server's side.</summary>
public sealed class GatewayConnection(DiscordDouble discord, WebSocket socket, string path)
{
    private readonly object _gate = new();
    private readonly List<JsonNode> _received = [];
    private readonly SemaphoreSlim _sendGate = new(1, 1);

    /// <summary>The path and query the client connected to (e.g. /gateway?v=10&amp;encoding=json).</summary>
    public string Path { get; } = path;
    public bool ReadySent { get; private set; }
    public bool GuildSent { get; private set; }
    public bool ResumedSent { get; private set; }
    public bool InvalidSessionSent { get; private set; }
    public string? SessionId { get; private set; }
    public DateTimeOffset OpenedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>How the client ended the connection: its close code, or null for an abort.</summary>
    public int? ClientCloseCode { get; private set; }
    public bool Ended { get; private set; }

    public IReadOnlyList<JsonNode> Received
    {
        get { lock (_gate) { return _received.ToList(); } }
    }

    public IReadOnlyList<JsonNode> ReceivedOp(int op) => Received.Where(p => (int?)p["op"] == op).ToList();

    internal async Task RunAsync(CancellationToken cancellationToken)
    {
        await SendAsync(new JsonObject { ["op"] = 10, ["d"] = new JsonObject { ["heartbeat_interval"] = discord.HeartbeatIntervalMs } });
        var buffer = new byte[64 * 1024];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer, cancellationToken);
                    message.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ClientCloseCode = (int?)result.CloseStatus;
                    break;
                }
                var payload = JsonNode.Parse(message.ToArray())!;
                lock (_gate)
                {
                    _received.Add(payload);
                }
                await OnPayloadAsync(payload);
            }
        }
        catch (Exception error) when (error is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            Ended = true;
        }
    }

    private async Task OnPayloadAsync(JsonNode payload)
    {
        switch ((int?)payload["op"])
        {
            case 1:
                if (discord.AckHeartbeats)
                {
                    await SendAsync(new JsonObject { ["op"] = 11 });
                }
                break;
            case 2:
                if ((string?)payload["d"]?["token"] != DiscordDouble.Token)
                {
                    await CloseAsync(4004, "Authentication failed.");
                    return;
                }
                if (discord.CloseOnIdentify is int code)
                {
                    discord.CloseOnIdentify = null;
                    await CloseAsync(code, code == 4014 ? "Disallowed intent(s)." : "Closed.");
                    return;
                }
                SessionId = Guid.NewGuid().ToString("N");
                await DispatchAsync("READY", discord.ReadyFor(SessionId));
                ReadySent = true;
                if (discord.SendGuildAfterReady)
                {
                    await DispatchAsync("GUILD_CREATE", discord.GuildCreate());
                    GuildSent = true;
                }
                break;
            case 6:
                var session = (string?)payload["d"]?["session_id"];
                if (!discord.KnowsSession(session))
                {
                    InvalidSessionSent = true;
                    await SendAsync(new JsonObject { ["op"] = 9, ["d"] = false });
                    return;
                }
                SessionId = session;
                await DispatchAsync("RESUMED", new JsonObject());
                ResumedSent = true;
                break;
        }
    }

    /// <summary>Sends a dispatch (op 0) with the next sequence number.</summary>
    public Task DispatchAsync(string type, JsonNode data) =>
        SendAsync(new JsonObject { ["op"] = 0, ["t"] = type, ["s"] = discord.NextSequence(), ["d"] = data });

    public async Task SendAsync(JsonObject payload)
    {
        await _sendGate.WaitAsync();
        try
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(payload.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _sendGate.Release();
        }
    }

    public async Task CloseAsync(int code, string reason)
    {
        await _sendGate.WaitAsync();
        try
        {
            await socket.CloseOutputAsync((WebSocketCloseStatus)code, reason, CancellationToken.None);
        }
        catch (WebSocketException)
        {
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>Drops the TCP connection without a close frame (a network failure).</summary>
    public void Abort() => socket.Abort();
}

