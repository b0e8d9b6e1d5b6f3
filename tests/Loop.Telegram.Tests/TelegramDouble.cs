namespace Loop.Telegram.Tests;

using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Loop.Testing;
using Microsoft.Extensions.Logging;

/// <summary>One Bot API request the double received: its method, its parameters merged from query
/// and body (as Telegram merges them), when, and the status it was answered with.</summary>
public sealed record TelegramCall(string Token, string Method, string HttpMethod, string? ContentType, JsonObject Body, DateTimeOffset At, int Status);

/// <summary>A message the bot sent successfully: the chat, the Message the double answered with, and the request.</summary>
public sealed record SentMessage(long ChatId, int MessageId, string Text, JsonObject Message, JsonObject Request);

/// <summary>A Telegram user as the API describes one (User object).</summary>
public sealed record TelegramUser(long Id, string FirstName, string? Username = null, string? LastName = null, bool IsBot = false, string? LanguageCode = "en")
{
    public static TelegramUser Alice { get; } = new(10000001, "Alice", "alice_example", "Liddell");
    public static TelegramUser Bob { get; } = new(10000002, "Bob", "bob_example");

    public JsonObject ToJson()
    {
        var user = new JsonObject { ["id"] = Id, ["is_bot"] = IsBot, ["first_name"] = FirstName };
        if (LastName is not null)
        {
            user["last_name"] = LastName;
        }
        if (Username is not null)
        {
            user["username"] = Username;
        }
        if (LanguageCode is not null && !IsBot)
        {
            user["language_code"] = LanguageCode;
        }
        return user;
    }
}

/// <summary>A chat as the API describes one (Chat object): private chats have the user's id, groups negative ids.</summary>
public sealed record TelegramChat(long Id, string Type, string? Title = null, string? Username = null, string? FirstName = null, string? LastName = null, bool IsForum = false)
{
    public static TelegramChat Private(TelegramUser user) => new(user.Id, "private", Username: user.Username, FirstName: user.FirstName, LastName: user.LastName);
    public static TelegramChat Group(long id = -4000000001, string title = "Loop group") => new(id, "group", title);
    public static TelegramChat Supergroup(long id = -1002000000001, string title = "Loop supergroup", bool isForum = false) => new(id, "supergroup", title, IsForum: isForum);

    public JsonObject ToJson()
    {
        var chat = new JsonObject { ["id"] = Id, ["type"] = Type };
        if (Title is not null)
        {
            chat["title"] = Title;
        }
        if (Username is not null)
        {
            chat["username"] = Username;
        }
        if (FirstName is not null)
        {
            chat["first_name"] = FirstName;
        }
        if (LastName is not null)
        {
            chat["last_name"] = LastName;
        }
        if (IsForum)
        {
            chat["is_forum"] = true;
        }
        return chat;
    }
}

/// <summary>An error the Bot API answers with: HTTP status = error_code, plus the optional ResponseParameters.</summary>
public sealed class BotApiError(int code, string description, JsonObject? parameters = null) : Exception(description)
{
    public int Code { get; } = code;
    public JsonObject? Parameters { get; } = parameters;

    public JsonObject ToJson()
    {
        var body = new JsonObject { ["ok"] = false, ["error_code"] = Code, ["description"] = Message };
        if (Parameters is not null)
        {
            body["parameters"] = Parameters.DeepClone();
        }
        return body;
    }

    public static BotApiError BadRequest(string what) => new(400, "Bad Request: " + what);
}

/// <summary>
/// A local Telegram Bot API (core.telegram.org/bots/api) on loopback: <c>/bot{token}/{method}</c>
/// answering with the documented envelope <c>{"ok":true,"result":…}</c> or
/// <c>{"ok":false,"error_code":N,"description":…,"parameters":…}</c>. It keeps an update queue per
/// bot with getUpdates' offset, limit, long-poll timeout and remembered allowed_updates, the
/// webhook setting, the chats it knows and the messages in them. Tests inject updates and
/// failures, read every call, and wait on conditions.
/// </summary>
public sealed partial class TelegramDouble : IAsyncDisposable
{
    /// <summary>The bot's token: "{bot id}:{secret}", the shape Telegram.Bot checks before sending anything.</summary>
    public const string Token = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
    public const long BotId = 7000000001;
    public const string BotUsername = "loop_test_bot";

    // Telegram's own limit on a message's text, counted after entity parsing.
    public const int MaxTextLength = 4096;

    private readonly WebApplication _app;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stopping = new();
    private readonly HttpClient _webhookClient = new();
    private readonly object _gate = new();
    private readonly Dictionary<string, BotState> _bots = new(StringComparer.Ordinal);
    private readonly List<TelegramCall> _calls = [];
    private readonly List<(string Method, BotApiError Error)> _failures = [];
    private readonly Stalls _stalls = new();

    private TelegramDouble(WebApplication app, TimeProvider time)
    {
        _app = app;
        _time = time;
        _bots[Token] = new BotState(Token, BotId, "Loop", BotUsername);
    }

    /// <summary>Starts the double on 127.0.0.1 with a port of the system's choosing.</summary>
    public static async Task<TelegramDouble> StartAsync(TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var telegram = new TelegramDouble(app, time ?? TimeProvider.System);
        app.Map("/bot{token}/{method}", telegram.HandleAsync);
        // Telegram answers anything else (no token, no method) with 404 in its usual envelope.
        app.MapFallback(context => WriteAsync(context, new BotApiError(404, "Not Found").ToJson(), 404));
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        telegram.BaseUrl = address.TrimEnd('/');
        return telegram;
    }

    /// <summary>What goes in <c>TelegramBotClientOptions(token, baseUrl: …)</c>.</summary>
    public string BaseUrl { get; private set; } = "";

    /// <summary>Mirrors BotFather's /setprivacy. Off by default, and getMe says so
    /// (can_read_all_group_messages). When on, the bot gets from groups only what Telegram's FAQ
    /// lists: commands, replies to its own messages and messages that mention it.</summary>
    public bool GroupPrivacy { get; set; }

    /// <summary>Registers another bot (a second token) with its own queue, settings and chats.</summary>
    public string AddBot(long id, string username, string firstName = "Other bot")
    {
        var token = id.ToString(CultureInfo.InvariantCulture) + ":AAF" + Convert.ToHexString(BitConverter.GetBytes(id));
        lock (_gate)
        {
            _bots[token] = new BotState(token, id, firstName, username);
        }
        return token;
    }

    public IReadOnlyList<TelegramCall> Calls
    {
        get { lock (_gate) { return _calls.ToList(); } }
    }

    public IReadOnlyList<TelegramCall> CallsTo(string method) =>
        Calls.Where(c => string.Equals(c.Method, method, StringComparison.OrdinalIgnoreCase)).ToList();

    /// <summary>Every message the default bot sent, in order; <see cref="SentTo"/> for one chat.</summary>
    public IReadOnlyList<SentMessage> Sent
    {
        get { lock (_gate) { return Bot(Token).Sent.ToList(); } }
    }

    public IReadOnlyList<SentMessage> SentTo(long chatId) => Sent.Where(m => m.ChatId == chatId).ToList();

    /// <summary>The message as it stands now (after edits), or null.</summary>
    public JsonObject? MessageIn(long chatId, int messageId, string token = Token)
    {
        lock (_gate)
        {
            return Bot(token).Chats.TryGetValue(chatId, out var chat) && chat.Messages.TryGetValue(messageId, out var message)
                ? (JsonObject)message.DeepClone()
                : null;
        }
    }

    /// <summary>The allowed_updates in force for a bot: null until a getUpdates or setWebhook set it.</summary>
    public IReadOnlyList<string>? AllowedUpdates(string token = Token)
    {
        lock (_gate)
        {
            return Bot(token).AllowedUpdates?.ToList();
        }
    }

    /// <summary>Updates queued and not yet confirmed by an offset.</summary>
    public int PendingUpdates(string token = Token)
    {
        lock (_gate)
        {
            return Bot(token).Queue.Count;
        }
    }

    public (string Url, string? SecretToken)? Webhook(string token = Token)
    {
        lock (_gate)
        {
            var bot = Bot(token);
            return bot.WebhookUrl is null ? null : (bot.WebhookUrl, bot.WebhookSecret);
        }
    }

    /// <summary>The commands last set with setMyCommands for the default scope and no language.</summary>
    public JsonArray? Commands(string scope = "default", string language = "", string token = Token)
    {
        lock (_gate)
        {
            return Bot(token).Commands.TryGetValue((scope, language), out var commands) ? (JsonArray)commands.DeepClone() : null;
        }
    }

    /// <summary>callback_query ids the bot answered, with the request.</summary>
    public IReadOnlyList<JsonObject> AnsweredCallbacks
    {
        get { lock (_gate) { return Bot(Token).Answered.Select(a => (JsonObject)a.DeepClone()).ToList(); } }
    }

    /// <summary>The next call of <paramref name="method"/> (any bot) is answered with this error instead.
    /// A 429 carries parameters.retry_after and, without a description, Telegram's "Too Many Requests: retry after N".</summary>
    public void FailNext(string method, int status, string? description = null, int? retryAfter = null)
    {
        var parameters = retryAfter is int seconds ? new JsonObject { ["retry_after"] = seconds } : null;
        description ??= status switch
        {
            429 => $"Too Many Requests: retry after {retryAfter ?? 1}",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            _ => "Internal Server Error",
        };
        lock (_gate)
        {
            _failures.Add((method, new BotApiError(status, description, parameters)));
        }
    }

    /// <summary>The next call of <paramref name="method"/> is held unanswered, as a network that stopped
    /// delivering would, until its caller gives up; nothing it asked for happens. The task completes
    /// when the call has arrived.</summary>
    public Task StallNext(string method) => _stalls.Next(call => string.Equals(call, method, StringComparison.OrdinalIgnoreCase));

    /// <summary>Makes a chat known to the bot (as if it had been added to it) without a message.</summary>
    public void AddChat(TelegramChat chat, string token = Token)
    {
        lock (_gate)
        {
            Bot(token).ChatFor(chat);
        }
    }

    /// <summary>
    /// A user writes in a chat: the Message is stored in the chat and, unless Telegram would not
    /// deliver it (allowed_updates, group privacy, a bot's message in a group), queued as a
    /// "message" Update. Entities are found as Telegram finds them: /commands (bot_command) and
    /// @usernames (mention). <paramref name="replyTo"/> is a message_id in the same chat.
    /// </summary>
    public JsonObject EnqueueMessage(TelegramChat chat, TelegramUser from, string text, int? replyTo = null, int? messageThreadId = null, string token = Token)
    {
        lock (_gate)
        {
            var bot = Bot(token);
            var chatState = bot.ChatFor(chat);
            var message = NewMessage(chatState, from.ToJson(), text, Entities(text), messageThreadId, replyTo);
            if (chat.Type == "channel")
            {
                // A channel post has the channel as its sender and arrives as "channel_post".
                message.Remove("from");
                message["sender_chat"] = chat.ToJson();
                Queue(bot, "channel_post", message.DeepClone());
                return (JsonObject)message.DeepClone();
            }
            // Bots never see other bots' messages in groups; with privacy on, only what is meant for them.
            var wanted = chat.Type == "private" || (!from.IsBot && (!GroupPrivacy || MeantForBot(bot, message)));
            if (wanted)
            {
                Queue(bot, "message", message.DeepClone());
            }
            return (JsonObject)message.DeepClone();
        }
    }

    /// <summary>A user presses an inline button under one of the bot's messages: a "callback_query" Update.</summary>
    public JsonObject EnqueueCallbackQuery(long chatId, int messageId, TelegramUser from, string data, string token = Token)
    {
        lock (_gate)
        {
            var bot = Bot(token);
            var message = bot.Chats[chatId].Messages[messageId];
            var id = (++bot.CallbackSequence).ToString(CultureInfo.InvariantCulture) + "0000000001";
            var query = new JsonObject
            {
                ["id"] = id,
                ["from"] = from.ToJson(),
                ["message"] = message.DeepClone(),
                ["chat_instance"] = "-" + Math.Abs(chatId).ToString(CultureInfo.InvariantCulture),
                ["data"] = data,
            };
            bot.OpenCallbacks.Add(id);
            Queue(bot, "callback_query", query.DeepClone());
            return query;
        }
    }

    /// <summary>Queues any documented Update: <paramref name="type"/> is its field ("edited_message",
    /// "my_chat_member", …). Returns the Update, or null when allowed_updates kept Telegram from creating it.</summary>
    public JsonObject? EnqueueUpdate(string type, JsonObject payload, string token = Token)
    {
        lock (_gate)
        {
            return Queue(Bot(token), type, payload)?.DeepClone() as JsonObject;
        }
    }

    /// <summary>Waits until the default bot sent at least <paramref name="count"/> messages to the chat.</summary>
    public async Task<IReadOnlyList<SentMessage>> WaitForSentAsync(long chatId, int count, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await Eventually.WaitAsync(() => SentTo(chatId).Count >= count, $"{count} message(s) sent to chat {chatId}", timeout, cancellationToken);
        return SentTo(chatId);
    }

    /// <summary>Waits until a call of <paramref name="method"/> matching the condition was answered.</summary>
    public async Task<TelegramCall> WaitForCallAsync(string method, Func<TelegramCall, bool>? match = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        TelegramCall? found = null;
        await Eventually.WaitAsync(() => (found = CallsTo(method).FirstOrDefault(c => match?.Invoke(c) ?? true)) is not null, $"a {method} call", timeout, cancellationToken);
        return found!;
    }

    /// <summary>Waits until a getUpdates long poll of the bot is being held open, so an update queued
    /// next is the one that wakes it (no guessing how long the client takes to ask).</summary>
    public Task WaitForLongPollAsync(string token = Token, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        Eventually.WaitAsync(() => { lock (_gate) { return Bot(token).Waiting > 0; } }, "a getUpdates long poll", timeout, cancellationToken);

    /// <summary>
    /// Delivers an Update to a webhook the way Telegram does: POST of the Update as JSON, with
    /// X-Telegram-Bot-Api-Secret-Token when a secret is set. Defaults to the url and secret the bot
    /// registered with setWebhook. Returns the status the webhook answered.
    /// </summary>
    public async Task<int> PostToWebhookAsync(JsonObject update, string? url = null, string? secretToken = null, string token = Token, CancellationToken cancellationToken = default)
    {
        var registered = Webhook(token);
        url ??= registered?.Url ?? throw new InvalidOperationException("no webhook is set and no url was given");
        secretToken ??= url == registered?.Url ? registered?.SecretToken : null;
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(update) };
        if (secretToken is not null)
        {
            request.Headers.Add("X-Telegram-Bot-Api-Secret-Token", secretToken);
        }
        using var response = await _webhookClient.SendAsync(request, cancellationToken);
        return (int)response.StatusCode;
    }

    /// <summary>Pushes the queued updates to the registered webhook in order, each confirmed (dropped)
    /// once the webhook answers 2xx; stops at the first failure, which Telegram would retry later.
    /// Returns how many were delivered.</summary>
    public async Task<int> DeliverPendingToWebhookAsync(string token = Token, CancellationToken cancellationToken = default)
    {
        var delivered = 0;
        while (true)
        {
            JsonObject? next;
            lock (_gate)
            {
                next = Bot(token).Queue.FirstOrDefault();
            }
            if (next is null)
            {
                return delivered;
            }
            var status = await PostToWebhookAsync((JsonObject)next.DeepClone(), token: token, cancellationToken: cancellationToken);
            if (status is < 200 or > 299)
            {
                lock (_gate)
                {
                    Bot(token).LastDeliveryError = (_time.GetUtcNow(), $"Wrong response from the webhook: {status}");
                }
                return delivered;
            }
            lock (_gate)
            {
                Bot(token).Queue.Remove(next);
            }
            delivered++;
        }
    }

    private BotState Bot(string token) =>
        _bots.TryGetValue(token, out var bot) ? bot : throw new ArgumentException($"no bot with token {token}", nameof(token));

    private JsonObject? Queue(BotState bot, string type, JsonNode payload)
    {
        // allowed_updates filters when Telegram creates an update, not when it hands it out: what is
        // already queued stays (the documented "unwanted updates may be received for a short period").
        if (!bot.Allows(type))
        {
            return null;
        }
        var update = new JsonObject { ["update_id"] = ++bot.LastUpdateId, [type] = payload };
        bot.Queue.Add(update);
        bot.Arrived.TrySetResult();
        bot.Arrived = NewSignal();
        return update;
    }

    private JsonObject NewMessage(ChatState chat, JsonObject from, string text, JsonArray entities, int? threadId, int? replyTo)
    {
        var message = new JsonObject { ["message_id"] = ++chat.LastMessageId };
        if (threadId is int thread)
        {
            message["message_thread_id"] = thread;
        }
        message["from"] = from;
        message["date"] = _time.GetUtcNow().ToUnixTimeSeconds();
        message["chat"] = chat.Chat.ToJson();
        if (threadId is not null && chat.Chat.IsForum)
        {
            message["is_topic_message"] = true;
        }
        if (replyTo is int target)
        {
            if (!chat.Messages.TryGetValue(target, out var original))
            {
                throw new ArgumentException($"no message {target} in chat {chat.Chat.Id}", nameof(replyTo));
            }
            // "will not contain further reply_to_message fields even if it itself is a reply"
            var quoted = (JsonObject)original.DeepClone();
            quoted.Remove("reply_to_message");
            message["reply_to_message"] = quoted;
        }
        message["text"] = text;
        if (entities.Count > 0)
        {
            message["entities"] = entities;
        }
        chat.Messages[(int)message["message_id"]!] = message;
        return message;
    }

    [GeneratedRegex(@"(?<![\w/])/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?(?![\w@])")]
    private static partial Regex BotCommandPattern();

    [GeneratedRegex(@"(?<![\w@])@[A-Za-z0-9_]{4,32}(?!\w)")]
    private static partial Regex MentionPattern();

    /// <summary>The entities Telegram's clients mark in a plain message, in UTF-16 units.</summary>
    private static JsonArray Entities(string text)
    {
        var found = BotCommandPattern().Matches(text).Select(m => (m.Index, m.Length, Type: "bot_command"))
            .Concat(MentionPattern().Matches(text).Select(m => (m.Index, m.Length, Type: "mention")))
            .OrderBy(e => e.Index);
        return new JsonArray([.. found.Select(e => (JsonNode)new JsonObject { ["offset"] = e.Index, ["length"] = e.Length, ["type"] = e.Type })]);
    }

    private static bool MeantForBot(BotState bot, JsonObject message)
    {
        var text = (string?)message["text"] ?? "";
        if ((long?)message["reply_to_message"]?["from"]?["id"] == bot.Id)
        {
            return true;
        }
        return message["entities"]?.AsArray().Any(e =>
        {
            var part = text.Substring((int)e!["offset"]!, (int)e["length"]!);
            return (string?)e["type"] switch
            {
                "bot_command" => !part.Contains('@', StringComparison.Ordinal) || part.EndsWith("@" + bot.Username, StringComparison.OrdinalIgnoreCase),
                "mention" => string.Equals(part, "@" + bot.Username, StringComparison.OrdinalIgnoreCase),
                _ => false,
            };
        }) ?? false;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task HandleAsync(HttpContext context)
    {
        var token = (string)context.Request.RouteValues["token"]!;
        var method = (string)context.Request.RouteValues["method"]!;
        JsonObject body;
        try
        {
            body = await ReadParametersAsync(context.Request, context.RequestAborted);
        }
        catch (JsonException)
        {
            // Telegram's answer to a body it cannot read.
            body = [];
            await AnswerAsync(context, token, method, body, BotApiError.BadRequest("invalid JSON"));
            return;
        }
        JsonNode result;
        try
        {
            result = await DispatchAsync(token, method, body, context.RequestAborted);
        }
        catch (BotApiError error)
        {
            await AnswerAsync(context, token, method, body, error);
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested || _stopping.IsCancellationRequested)
        {
            // The client gave up on a long poll or a stalled call (or the double is stopping): nothing to answer.
            Record(token, method, context, body, 499);
            return;
        }
        Record(token, method, context, body, 200);
        await WriteAsync(context, new JsonObject { ["ok"] = true, ["result"] = result }, 200);
    }

    private async Task AnswerAsync(HttpContext context, string token, string method, JsonObject body, BotApiError error)
    {
        Record(token, method, context, body, error.Code);
        await WriteAsync(context, error.ToJson(), error.Code);
    }

    private void Record(string token, string method, HttpContext context, JsonObject body, int status)
    {
        lock (_gate)
        {
            _calls.Add(new TelegramCall(token, method, context.Request.Method, context.Request.ContentType, body, _time.GetUtcNow(), status));
        }
    }

    private static async Task WriteAsync(HttpContext context, JsonObject body, int status)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    /// <summary>The four ways the Bot API takes parameters: query string, JSON, urlencoded form and
    /// multipart form. Form and query values are strings; objects in them are JSON-serialized.</summary>
    private static async Task<JsonObject> ReadParametersAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var parameters = new JsonObject();
        foreach (var (name, value) in request.Query)
        {
            parameters[name] = value.ToString();
        }
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(cancellationToken);
            foreach (var (name, value) in form)
            {
                parameters[name] = value.ToString();
            }
            foreach (var file in form.Files)
            {
                parameters[file.Name] = "attach://" + file.FileName;
            }
        }
        else if (request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) == true)
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            var text = await reader.ReadToEndAsync(cancellationToken);
            if (text.Length > 0 && JsonNode.Parse(text) is JsonObject json)
            {
                foreach (var (name, value) in json.ToList())
                {
                    json.Remove(name);
                    parameters[name] = value;
                }
            }
        }
        return parameters;
    }

    private async Task<JsonNode> DispatchAsync(string token, string method, JsonObject p, CancellationToken cancellationToken)
    {
        BotState bot;
        lock (_gate)
        {
            if (!_bots.TryGetValue(token, out bot!))
            {
                throw new BotApiError(401, "Unauthorized");
            }
            var failure = _failures.FindIndex(f => string.Equals(f.Method, method, StringComparison.OrdinalIgnoreCase));
            if (failure >= 0)
            {
                var error = _failures[failure].Error;
                _failures.RemoveAt(failure);
                throw error;
            }
        }
        if (await _stalls.HoldAsync(method, cancellationToken))
        {
            cancellationToken.ThrowIfCancellationRequested();
        }
        // Method names are case-insensitive in the Bot API.
        switch (method.ToLowerInvariant())
        {
            case "getupdates":
                return await GetUpdatesAsync(bot, p, cancellationToken);
            case "getme":
                return bot.User(GroupPrivacy);
            case "logout":
            case "close":
                return true;
        }
        lock (_gate)
        {
            return method.ToLowerInvariant() switch
            {
                "setwebhook" => SetWebhook(bot, p),
                "deletewebhook" => DeleteWebhook(bot, p),
                "getwebhookinfo" => WebhookInfo(bot),
                "sendmessage" => SendMessage(bot, p),
                "editmessagetext" => EditMessageText(bot, p),
                "sendchataction" => SendChatAction(bot, p),
                "setmycommands" => SetMyCommands(bot, p),
                "getmycommands" => Commands(scope: Scope(p), language: Text(p, "language_code") ?? "", token: bot.Token) ?? [],
                "deletemycommands" => bot.Commands.Remove((Scope(p), Text(p, "language_code") ?? "")) || true,
                "answercallbackquery" => AnswerCallbackQuery(bot, p),
                _ => throw new BotApiError(404, "Not Found"),
            };
        }
    }

    private async Task<JsonNode> GetUpdatesAsync(BotState bot, JsonObject p, CancellationToken cancellationToken)
    {
        var limit = Math.Clamp((int?)Number(p, "limit") ?? 100, 1, 100);
        var timeout = TimeSpan.FromSeconds(Math.Max(0, Number(p, "timeout") ?? 0));
        var conflict = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (bot.WebhookUrl is not null)
            {
                throw new BotApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
            }
            if (Json(p, "allowed_updates") is JsonArray allowed)
            {
                // An empty list means the default set; an absent one keeps what was set before.
                bot.AllowedUpdates = allowed.Count == 0 ? null : [.. allowed.Select(a => (string)a!)];
            }
            var offset = Number(p, "offset") ?? 0;
            if (offset > 0)
            {
                bot.Queue.RemoveAll(u => (long)u["update_id"]! < offset);
            }
            else if (offset < 0)
            {
                // -N: the last N updates; all earlier ones are forgotten.
                bot.Queue.RemoveRange(0, Math.Max(0, bot.Queue.Count + (int)offset));
            }
            // Only one getUpdates per bot: a new one ends the one still waiting, as Telegram does.
            bot.Poller?.TrySetResult("Conflict: terminated by other getUpdates request; make sure that only one bot instance is running");
            bot.Poller = conflict;
        }
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        using var timer = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        timer.CancelAfter(timeout);
        var expired = Task.Delay(Timeout.InfiniteTimeSpan, timer.Token);
        try
        {
            while (true)
            {
                Task arrived;
                lock (_gate)
                {
                    if (conflict.Task.IsCompleted)
                    {
                        throw new BotApiError(409, conflict.Task.Result);
                    }
                    if (bot.Queue.Count > 0 || timeout == TimeSpan.Zero || timer.IsCancellationRequested)
                    {
                        return new JsonArray([.. bot.Queue.Take(limit).Select(u => u.DeepClone())]);
                    }
                    arrived = bot.Arrived.Task;
                    bot.Waiting++;
                }
                try
                {
                    await Task.WhenAny(arrived, conflict.Task, expired).WaitAsync(linked.Token);
                }
                finally
                {
                    lock (_gate)
                    {
                        bot.Waiting--;
                    }
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                if (bot.Poller == conflict)
                {
                    bot.Poller = null;
                }
            }
        }
    }

    private static JsonNode SetWebhook(BotState bot, JsonObject p)
    {
        var url = Text(p, "url") ?? "";
        if (url.Length == 0)
        {
            // Telegram: an empty url removes the webhook.
            bot.WebhookUrl = null;
            return true;
        }
        if (!Uri.TryCreate(url, UriKind.Absolute, out _))
        {
            throw BotApiError.BadRequest("bad webhook: Failed to resolve host: Name or service not known");
        }
        bot.WebhookUrl = url;
        bot.WebhookSecret = Text(p, "secret_token");
        if (Json(p, "allowed_updates") is JsonArray allowed)
        {
            bot.AllowedUpdates = allowed.Count == 0 ? null : [.. allowed.Select(a => (string)a!)];
        }
        if (Flag(p, "drop_pending_updates"))
        {
            bot.Queue.Clear();
        }
        // Setting a webhook ends a pending getUpdates.
        bot.Poller?.TrySetResult("Conflict: terminated by setWebhook request");
        return true;
    }

    private static JsonNode DeleteWebhook(BotState bot, JsonObject p)
    {
        bot.WebhookUrl = null;
        bot.WebhookSecret = null;
        if (Flag(p, "drop_pending_updates"))
        {
            bot.Queue.Clear();
        }
        return true;
    }

    private static JsonObject WebhookInfo(BotState bot)
    {
        var info = new JsonObject
        {
            ["url"] = bot.WebhookUrl ?? "",
            ["has_custom_certificate"] = false,
            ["pending_update_count"] = bot.Queue.Count,
        };
        if (bot.WebhookUrl is not null)
        {
            info["max_connections"] = 40;
            info["ip_address"] = "127.0.0.1";
            if (bot.LastDeliveryError is { } error)
            {
                info["last_error_date"] = error.At.ToUnixTimeSeconds();
                info["last_error_message"] = error.Message;
            }
            if (bot.AllowedUpdates is { } allowed)
            {
                info["allowed_updates"] = new JsonArray([.. allowed.Select(a => (JsonNode)a)]);
            }
        }
        return info;
    }

    private JsonNode SendMessage(BotState bot, JsonObject p)
    {
        var chat = ChatOf(bot, p);
        var parsed = ParseText(p, "text");
        int? replyTo = null;
        var reply = Json(p, "reply_parameters") as JsonObject;
        if ((reply is not null ? Number(reply, "message_id") : Number(p, "reply_to_message_id")) is long target)
        {
            var optional = reply is not null ? Flag(reply, "allow_sending_without_reply") : Flag(p, "allow_sending_without_reply");
            if (chat.Messages.ContainsKey((int)target))
            {
                replyTo = (int)target;
            }
            else if (!optional)
            {
                throw BotApiError.BadRequest("message to be replied not found");
            }
        }
        var threadId = (int?)Number(p, "message_thread_id");
        if (threadId is not null && chat.Chat is not { Type: "supergroup", IsForum: true })
        {
            // Outside forum topics Telegram ignores message_thread_id on sends.
            threadId = null;
        }
        var message = NewMessage(chat, bot.User(GroupPrivacy, full: false), parsed.Text, parsed.Entities, threadId, replyTo);
        if (Json(p, "reply_markup") is JsonObject markup && markup.ContainsKey("inline_keyboard"))
        {
            message["reply_markup"] = markup.DeepClone();
        }
        bot.Sent.Add(new SentMessage(chat.Chat.Id, (int)message["message_id"]!, parsed.Text, (JsonObject)message.DeepClone(), (JsonObject)p.DeepClone()));
        return message.DeepClone();
    }

    private JsonNode EditMessageText(BotState bot, JsonObject p)
    {
        if (Text(p, "inline_message_id") is not null)
        {
            // Messages sent via inline mode are not modelled; Telegram answers true for them.
            ParseText(p, "text");
            return true;
        }
        var chat = ChatOf(bot, p);
        var id = (int?)Number(p, "message_id") ?? throw BotApiError.BadRequest("message identifier is not specified");
        if (!chat.Messages.TryGetValue(id, out var message) || (long?)message["from"]?["id"] != bot.Id)
        {
            throw BotApiError.BadRequest(chat.Messages.ContainsKey(id) ? "message can't be edited" : "message to edit not found");
        }
        var parsed = ParseText(p, "text");
        var entities = parsed.Entities.Count > 0 ? parsed.Entities : null;
        var markup = Json(p, "reply_markup");
        if ((string?)message["text"] == parsed.Text && JsonNode.DeepEquals(message["entities"], entities) && JsonNode.DeepEquals(message["reply_markup"], markup))
        {
            throw BotApiError.BadRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message");
        }
        message["text"] = parsed.Text;
        message.Remove("entities");
        if (entities is not null)
        {
            message["entities"] = entities;
        }
        message.Remove("reply_markup");
        if (markup is JsonObject keyboard)
        {
            message["reply_markup"] = keyboard.DeepClone();
        }
        message["edit_date"] = _time.GetUtcNow().ToUnixTimeSeconds();
        return message.DeepClone();
    }

    private static JsonNode SendChatAction(BotState bot, JsonObject p)
    {
        ChatOf(bot, p);
        var action = Text(p, "action");
        string[] actions = ["typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice", "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"];
        if (action is null || !actions.Contains(action))
        {
            throw BotApiError.BadRequest("wrong parameter action in request");
        }
        return true;
    }

    private static JsonNode SetMyCommands(BotState bot, JsonObject p)
    {
        var commands = Json(p, "commands") as JsonArray ?? throw BotApiError.BadRequest("parameter \"commands\" is required");
        if (commands.Count > 100)
        {
            throw BotApiError.BadRequest("BOT_COMMANDS_TOO_MUCH");
        }
        foreach (var command in commands)
        {
            var name = (string?)command?["command"] ?? "";
            var description = (string?)command?["description"] ?? "";
            // command: 1-32 chars of a-z, 0-9 and _; description: 1-256 chars.
            if (!CommandPattern().IsMatch(name))
            {
                throw BotApiError.BadRequest("BOT_COMMAND_INVALID");
            }
            if (description.Length is 0 or > 256)
            {
                throw BotApiError.BadRequest("command description is empty");
            }
        }
        bot.Commands[(Scope(p), Text(p, "language_code") ?? "")] = (JsonArray)commands.DeepClone();
        return true;
    }

    [GeneratedRegex("^[a-z0-9_]{1,32}$")]
    private static partial Regex CommandPattern();

    private static JsonNode AnswerCallbackQuery(BotState bot, JsonObject p)
    {
        var id = Text(p, "callback_query_id") ?? "";
        if (!bot.OpenCallbacks.Remove(id))
        {
            throw BotApiError.BadRequest("query is too old and response timeout expired or query ID is invalid");
        }
        bot.Answered.Add((JsonObject)p.DeepClone());
        return true;
    }

    /// <summary>text (or caption) after parse_mode, with Telegram's limits checked on the parsed result.</summary>
    private static ParsedText ParseText(JsonObject p, string field)
    {
        var text = Text(p, field) ?? "";
        var mode = Text(p, "parse_mode");
        ParsedText parsed;
        try
        {
            parsed = TelegramMarkup.Parse(text, mode);
        }
        catch (MarkupException error)
        {
            throw BotApiError.BadRequest("can't parse entities: " + error.Message);
        }
        catch (ArgumentException)
        {
            throw BotApiError.BadRequest("unsupported parse_mode");
        }
        if (string.IsNullOrEmpty(mode) && Json(p, "entities") is JsonArray given)
        {
            parsed = parsed with { Entities = (JsonArray)given.DeepClone() };
        }
        if (string.IsNullOrWhiteSpace(parsed.Text))
        {
            throw BotApiError.BadRequest(field == "text" ? "message text is empty" : "text must be non-empty");
        }
        // The limit counts characters (code points), not UTF-16 units or bytes.
        var characters = parsed.Text.Count(c => !char.IsLowSurrogate(c));
        if (characters > MaxTextLength)
        {
            throw BotApiError.BadRequest("message is too long");
        }
        return parsed;
    }

    /// <summary>chat_id as a number or "@username"; a chat the bot was never in is "chat not found".</summary>
    private static ChatState ChatOf(BotState bot, JsonObject p)
    {
        var raw = p["chat_id"];
        if (raw is null || raw.ToString().Length == 0)
        {
            throw BotApiError.BadRequest("chat_id is empty");
        }
        var chat = Number(p, "chat_id") is long id
            ? bot.Chats.GetValueOrDefault(id)
            : bot.Chats.Values.FirstOrDefault(c => "@" + c.Chat.Username == raw.ToString());
        return chat ?? throw BotApiError.BadRequest("chat not found");
    }

    private static string Scope(JsonObject p) => (string?)Json(p, "scope")?["type"] ?? "default";

    private static string? Text(JsonObject p, string name) => p[name] switch
    {
        null => null,
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        var other => other.ToJsonString(),
    };

    private static long? Number(JsonObject p, string name) => p[name] switch
    {
        JsonValue value when value.TryGetValue<long>(out var number) => number,
        JsonValue value when value.TryGetValue<string>(out var text) && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) => parsed,
        _ => null,
    };

    private static bool Flag(JsonObject p, string name) => p[name] switch
    {
        JsonValue value when value.TryGetValue<bool>(out var flag) => flag,
        JsonValue value when value.TryGetValue<string>(out var text) => text is "true" or "True" or "1",
        _ => false,
    };

    /// <summary>An object or array parameter: as JSON in a JSON body, JSON-serialized in a string elsewhere.</summary>
    private static JsonNode? Json(JsonObject p, string name)
    {
        try
        {
            return p[name] switch
            {
                JsonValue value when value.TryGetValue<string>(out var text) => JsonNode.Parse(text),
                var node => node,
            };
        }
        catch (JsonException)
        {
            throw BotApiError.BadRequest($"can't parse {name} JSON object");
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Pending long polls would otherwise hold the server's shutdown.
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _webhookClient.Dispose();
        _stopping.Dispose();
    }

    /// <summary>What Telegram keeps for one bot.</summary>
    private sealed class BotState(string token, long id, string firstName, string username)
    {
        // Update types Telegram leaves out unless asked for by name.
        private static readonly string[] NotByDefault = ["chat_member", "message_reaction", "message_reaction_count"];

        public string Token { get; } = token;
        public long Id { get; } = id;
        public string Username { get; } = username;
        public List<JsonObject> Queue { get; } = [];
        public long LastUpdateId { get; set; } = 800000000;
        public List<string>? AllowedUpdates { get; set; }
        public TaskCompletionSource Arrived { get; set; } = NewSignal();
        /// <summary>The getUpdates being answered now; completing it ends that request with 409 and the reason.</summary>
        public TaskCompletionSource<string>? Poller { get; set; }
        public int Waiting { get; set; }
        public string? WebhookUrl { get; set; }
        public string? WebhookSecret { get; set; }
        /// <summary>When and why the last delivery to the webhook failed (getWebhookInfo's last_error_*).</summary>
        public (DateTimeOffset At, string Message)? LastDeliveryError { get; set; }
        public Dictionary<long, ChatState> Chats { get; } = [];
        public List<SentMessage> Sent { get; } = [];
        public Dictionary<(string Scope, string Language), JsonArray> Commands { get; } = [];
        public HashSet<string> OpenCallbacks { get; } = new(StringComparer.Ordinal);
        public List<JsonObject> Answered { get; } = [];
        public long CallbackSequence { get; set; } = 4000000;

        public bool Allows(string type) => AllowedUpdates?.Contains(type) ?? !NotByDefault.Contains(type);

        public ChatState ChatFor(TelegramChat chat)
        {
            if (!Chats.TryGetValue(chat.Id, out var state))
            {
                Chats[chat.Id] = state = new ChatState(chat);
            }
            return state;
        }

        /// <summary>getMe's User, or (full: false) the bot as the author of a message.</summary>
        public JsonObject User(bool groupPrivacy, bool full = true)
        {
            var user = new JsonObject { ["id"] = Id, ["is_bot"] = true, ["first_name"] = firstName, ["username"] = Username };
            if (full)
            {
                user["can_join_groups"] = true;
                user["can_read_all_group_messages"] = !groupPrivacy;
                user["supports_inline_queries"] = false;
                user["can_connect_to_business"] = false;
                user["has_main_web_app"] = false;
            }
            return user;
        }
    }

    /// <summary>A chat the bot is in and its messages by id.</summary>
    private sealed class ChatState(TelegramChat chat)
    {
        public TelegramChat Chat { get; } = chat;
        public int LastMessageId { get; set; }
        public Dictionary<int, JsonObject> Messages { get; } = [];
    }
}
