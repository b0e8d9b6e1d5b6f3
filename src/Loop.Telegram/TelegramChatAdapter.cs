namespace Loop.Telegram;

using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Loop.Runtime;
using Microsoft.Extensions.Logging;
using global::Telegram.Bot;
using global::Telegram.Bot.Exceptions;
using global::Telegram.Bot.Types;
using global::Telegram.Bot.Types.Enums;
using global::Telegram.Bot.Types.ReplyMarkups;

/// <summary>
/// A Telegram bot on the Bot API, by long polling or, with a public webhook_url, through a webhook
/// (any node takes Telegram's calls; the node holding the connection sets the webhook). Each chat (private, group, forum topic) is a Loop
/// channel; in private chats every message is for the agent, in groups a mention, a reply to the bot
/// or <c>/loop …</c>. Only whitelisted users reach the agent; a stranger is told so once a day. Runs
/// of the connector's channels show "typing" and end with a reply to the message that started them,
/// as Telegram's HTML formatting (plain text when Telegram refuses the markup). An update is confirmed
/// (the next getUpdates' offset, or the webhook call's 200) only once its message is stored.
/// </summary>
public sealed class TelegramChatAdapter : IChatAdapter, IChatWebhook
{
    private const string Unauthorized = "Telegram refused the token (401 Unauthorized)";
    private const string StopPrefix = "loop:stop:";
    private static readonly TimeSpan GroupStatusGap = TimeSpan.FromSeconds(3);
    private static readonly UpdateType[] Wanted = [UpdateType.Message, UpdateType.CallbackQuery];

    private readonly TelegramOptions _options;
    private readonly ChannelService _channels;
    private readonly TaskService _tasks;
    private readonly ILoopEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TelegramBotClient _bot;
    private readonly TelegramCommands _commands;
    private readonly ChatRoleBook _roles;
    private readonly ChatRunStatuses _statuses;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly Dictionary<string, Task> _outboxTails = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Typing> _typing = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _chatNames = new(StringComparer.Ordinal);
    private readonly List<Task> _background = [];
    private ConnectorRunFeed? _runs;
    private Polling? _polling;
    private User? _me;
    private int _commandsRegistered;
    private DateTimeOffset _webhookSince;
    private DateTime? _reportedDeliveryFailure;
    private int _disposed;
    private volatile string _status = "not connected";

    public TelegramChatAdapter(Connector connector, TelegramOptions options, ChannelService channels, TaskService tasks, ILoopEvents events,
        Func<HealthReport> health, TimeProvider time, ILoggerFactory loggers, BudgetService budgets, ChatRoleBook roles)
    {
        Connector = connector;
        _roles = roles;
        _options = options;
        _channels = channels;
        _tasks = tasks;
        _events = events;
        _time = time;
        _logger = loggers.CreateLogger<TelegramChatAdapter>();
        // The library's own 429 retry is off: the bot waits out retry_after itself and drops nothing.
        _bot = new TelegramBotClient(new TelegramBotClientOptions(options.Token, baseUrl: options.ApiUrl) { RetryThreshold = 0 });
        _commands = new TelegramCommands(tasks, health, budgets);
        _statuses = new ChatRunStatuses(StartStatus);
    }

    public Connector Connector { get; }

    private string PlatformName => Connector.Id;

    public string Status => _status;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _runs = ConnectorRunFeed.Start(_events, _channels, Connector, OnRunEventAsync, _time, _logger, withOutput: true);
        return Task.CompletedTask;
    }

    public Task ConnectAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_polling is null && _disposed == 0)
            {
                var stop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                _status = "connecting";
                _polling = new Polling(stop, Task.Run(() => ConnectionAsync(stop.Token)));
            }
        }
        return Task.CompletedTask;
    }

    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        Polling? polling;
        lock (_gate)
        {
            (polling, _polling) = (_polling, null);
        }
        if (polling is null)
        {
            return;
        }
        await polling.Stop.CancelAsync();
        try
        {
            await polling.Loop;
        }
        catch (OperationCanceledException)
        {
        }
        polling.Stop.Dispose();
        _status = "not connected";
    }

    public Task ChannelRegisteredAsync(Channel channel, CancellationToken cancellationToken) =>
        // A bot cannot create Telegram chats: a directory's channel gets one when someone writes from a chat.
        Task.CompletedTask;

    // ---- inbound: long polling, or a webhook ----

    /// <summary>Introduces the bot to Telegram (getMe, then the webhook set or removed), then polls for
    /// updates, or in webhook mode watches that Telegram can deliver to it.</summary>
    private async Task ConnectionAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        var introduced = false;
        int? offset = null;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    if (!introduced)
                    {
                        await IntroduceAsync(cancellationToken);
                        introduced = true;
                    }
                    if (_options.WebhookUrl is not null)
                    {
                        await WatchWebhookAsync(cancellationToken);
                        failures = 0;
                        await Task.Delay(_options.Timings.Poll, _time, cancellationToken);
                        continue;
                    }
                    // After a failure the first poll answers at once, so the status says "connected" again soon.
                    var connected = _status.StartsWith("connected", StringComparison.Ordinal);
                    var updates = await _bot.GetUpdates(offset, limit: 100, timeout: connected ? (int)_options.Timings.Poll.TotalSeconds : 0, Wanted, cancellationToken);
                    _status = $"connected as @{_me!.Username}";
                    failures = 0;
                    foreach (var update in updates)
                    {
                        // Throws when the message could not be stored: the update stays unconfirmed and comes again.
                        await OnUpdateAsync(update, cancellationToken);
                        offset = update.Id + 1;
                    }
                }
                catch (ApiRequestException error) when (error.ErrorCode == 401)
                {
                    _status = "failed: " + Unauthorized;
                    _logger.LogError("Telegram connector {Connector}: {Problem}; it stays stopped until its token is changed", Connector.Id, Unauthorized);
                    _events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), null, null, $"{Connector.Name}: {Unauthorized}"));
                    return;
                }
                catch (ApiRequestException error) when (error.Parameters?.RetryAfter is int retryAfter)
                {
                    _logger.LogWarning("Telegram asked to wait {Seconds} s before calling again", retryAfter);
                    await Task.Delay(TimeSpan.FromSeconds(retryAfter), _time, cancellationToken);
                }
                catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    failures++;
                    var why = error is ApiRequestException api ? $"{api.ErrorCode} {api.Message}" : error.Message;
                    var wait = Backoff(failures);
                    if (error is StoreFailure stored)
                    {
                        // The connection is fine; the store is not. The update is asked for again.
                        _logger.LogWarning("Could not store Telegram update {UpdateId}: {Error}; it stays unconfirmed and is taken again in {Seconds} s",
                            stored.UpdateId, stored.InnerException?.Message, wait.TotalSeconds);
                    }
                    else
                    {
                        _status = "reconnecting: " + why;
                        _logger.LogWarning("Telegram connection failed: {Error}; again in {Seconds} s", why, wait.TotalSeconds);
                    }
                    await Task.Delay(wait, _time, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Who the bot is; where Telegram sends its updates (long polling and a webhook exclude
    /// each other); its commands, once.</summary>
    private async Task IntroduceAsync(CancellationToken cancellationToken)
    {
        _me ??= await _bot.GetMe(cancellationToken);
        if (_options.WebhookUrl is null)
        {
            await _bot.DeleteWebhook(dropPendingUpdates: false, cancellationToken);
            _logger.LogInformation("Telegram bot @{Username} ({BotId}) connected; polling for updates", _me.Username, _me.Id);
        }
        else
        {
            await SetWebhookAsync(cancellationToken);
            _logger.LogInformation("Telegram bot @{Username} ({BotId}) connected; Telegram sends updates to {Url}", _me.Username, _me.Id, HookUrl);
        }
        if (Interlocked.Exchange(ref _commandsRegistered, 1) == 0)
        {
            Track(RegisterCommandsAsync(_stop.Token));
        }
    }

    private string HookUrl => _options.HookUrl(Connector.Id)!;

    private async Task SetWebhookAsync(CancellationToken cancellationToken)
    {
        await _bot.SetWebhook(HookUrl, allowedUpdates: Wanted, dropPendingUpdates: false, secretToken: _options.WebhookSecret, cancellationToken: cancellationToken);
        _webhookSince = _time.GetUtcNow();
    }

    /// <summary>Asks Telegram how delivery to the webhook goes: sets it again when it was removed or
    /// changed elsewhere, and says in the status when Telegram could not deliver since the last look.</summary>
    private async Task WatchWebhookAsync(CancellationToken cancellationToken)
    {
        var info = await _bot.GetWebhookInfo(cancellationToken);
        if (info.Url != HookUrl)
        {
            _logger.LogWarning("Telegram's webhook for @{Username} was {Url}; setting it to {HookUrl} again", _me!.Username, info.Url.Length == 0 ? "removed" : info.Url, HookUrl);
            await SetWebhookAsync(cancellationToken);
            info = await _bot.GetWebhookInfo(cancellationToken);
        }
        // Telegram gives the time of the last failure to the second.
        if (info.LastErrorDate is { } failedAt && new DateTimeOffset(DateTime.SpecifyKind(failedAt, DateTimeKind.Utc)) >= _webhookSince.AddTicks(-(_webhookSince.Ticks % TimeSpan.TicksPerSecond))
            && info.PendingUpdateCount > 0)
        {
            _status = $"reconnecting: Telegram could not deliver updates to {HookUrl} ({info.LastErrorMessage}); {info.PendingUpdateCount} waiting";
            if (_reportedDeliveryFailure != failedAt)
            {
                _reportedDeliveryFailure = failedAt;
                _logger.LogWarning("Telegram could not deliver updates to {Url}: {Error} ({Pending} waiting)", HookUrl, info.LastErrorMessage, info.PendingUpdateCount);
                _events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), null, null,
                    $"{Connector.Name}: Telegram could not deliver updates to {HookUrl}: {info.LastErrorMessage}"));
            }
            return;
        }
        _status = $"connected as @{_me!.Username} (webhook)";
    }

    /// <summary>An update Telegram posts to /hooks/{id} in webhook mode. Answered 200 only once its
    /// message is stored; any other answer makes Telegram send it again.</summary>
    public async Task<WebhookAnswer> ReceiveAsync(WebhookCall call, CancellationToken cancellationToken)
    {
        if (_options.WebhookSecret is not { } secret)
        {
            return new WebhookAnswer(404, $"connector {Connector.Id} polls Telegram for updates; it takes no webhook calls (set webhook_url to use one)");
        }
        if (call.Method != "POST")
        {
            return new WebhookAnswer(405, "Telegram's webhook calls are POST requests");
        }
        if (!call.Headers.TryGetValue("x-telegram-bot-api-secret-token", out var given)
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(secret)))
        {
            _logger.LogWarning("A call to the webhook of connector {Connector} lacked Telegram's secret token; refused", Connector.Id);
            return new WebhookAnswer(401, "the secret token is missing or wrong");
        }
        Update? update;
        try
        {
            update = JsonSerializer.Deserialize<Update>(call.Body, JsonBotAPI.Options);
        }
        catch (JsonException)
        {
            update = null;
        }
        if (update is null)
        {
            return new WebhookAnswer(400, "the body is not a Telegram update (a JSON Update object)");
        }
        try
        {
            _me ??= await _bot.GetMe(cancellationToken);
            await OnUpdateAsync(update, cancellationToken);
            return new WebhookAnswer(200, "ok");
        }
        catch (Exception error) when (error is StoreFailure or RequestException)
        {
            _logger.LogWarning("Telegram update {UpdateId} could not be taken ({Error}); Telegram sends it again", update.Id, error.Message);
            return new WebhookAnswer(503, "not stored; send it again");
        }
    }

    private TimeSpan Backoff(int failures) =>
        TimeSpan.FromTicks(Math.Min(_options.Timings.ReconnectLongest.Ticks, _options.Timings.ReconnectFirst.Ticks << Math.Min(failures - 1, 16)));

    private sealed class StoreFailure(int updateId, Exception inner) : Exception($"could not store update {updateId}: {inner.Message}", inner)
    {
        public int UpdateId { get; } = updateId;
    }

    private async Task OnUpdateAsync(Update update, CancellationToken cancellationToken)
    {
        if (update.CallbackQuery is { } query)
        {
            await OnCallbackAsync(query, cancellationToken);
            return;
        }
        if (update.Message is not { From: { IsBot: false } from } message || _me is not { } me)
        {
            return;
        }
        var text = message.Text ?? message.Caption;
        var entities = (message.Text is not null ? message.Entities : message.CaptionEntities) ?? [];
        if (string.IsNullOrWhiteSpace(text))
        {
            return;
        }
        var isPrivate = message.Chat.Type == ChatType.Private;
        var command = CommandOf(text, entities, me, out var arguments, out var forOtherBot);
        if (forOtherBot)
        {
            return;
        }
        var mentioned = entities.Any(e =>
            (e.Type == MessageEntityType.Mention && string.Equals(Slice(text, e), "@" + me.Username, StringComparison.OrdinalIgnoreCase))
            || (e.Type == MessageEntityType.TextMention && e.User?.Id == me.Id));
        // In a forum topic every message "replies" to the topic's first message: that is no reply.
        var reply = message.ReplyToMessage;
        var repliesToBot = reply?.From?.Id == me.Id && !(message.IsTopicMessage && reply.Id == message.MessageThreadId);
        var forAgent = command == "loop" || (command is null && (isPrivate || mentioned || repliesToBot));
        var forCommand = command is not null && command != "loop" && TelegramCommands.Knows(command);
        if (!forAgent && !forCommand)
        {
            return;
        }
        var chat = ExternalId(message);
        if (!_options.Allows(from.Id, from.Username))
        {
            await RefuseAsync(chat, message, from, cancellationToken);
            return;
        }
        try
        {
            if (forCommand)
            {
                await RunCommandAsync(chat, message, command!, arguments, cancellationToken);
                return;
            }
            var content = command == "loop" ? arguments : StripMention(text, entities, me).Trim();
            if (content.Length == 0)
            {
                return;
            }
            var name = await NameAsync(chat, message, cancellationToken);
            var author = PersonName(from);
            var (channel, stored) = await _channels.PostChatMessageAsync(
                new ChatInbound(PlatformName, chat, name, author, content, message.Id.ToString(CultureInfo.InvariantCulture), Connector.Kind,
                    from.Id.ToString(CultureInfo.InvariantCulture)), cancellationToken);
            _logger.LogInformation("Telegram message {MessageId} from {Author} stored as message {StoredId} of channel {ChannelId}",
                message.Id, author, stored.Id, channel.Id);
        }
        catch (LoopValidationException invalid)
        {
            Track(SendInOrderAsync(chat, () => SendFormattedAsync(chat, $"I can't take that message: {TelegramFormatter.EscapeMarkdown(invalid.Message)}", message.Id, _stop.Token)));
        }
        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new StoreFailure(update.Id, error);
        }
    }

    /// <summary>The command a message starts with ("schedule" for "/schedule@bot …"), and its arguments.</summary>
    private static string? CommandOf(string text, MessageEntity[] entities, User me, out string arguments, out bool forOtherBot)
    {
        arguments = "";
        forOtherBot = false;
        if (entities.FirstOrDefault(e => e.Type == MessageEntityType.BotCommand && e.Offset == 0) is not { } entity)
        {
            return null;
        }
        var word = Slice(text, entity)[1..];
        var at = word.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            if (!string.Equals(word[(at + 1)..], me.Username, StringComparison.OrdinalIgnoreCase))
            {
                forOtherBot = true;
                return null;
            }
            word = word[..at];
        }
        arguments = text[(entity.Offset + entity.Length)..].Trim();
        return word.ToLowerInvariant();
    }

    private static string Slice(string text, MessageEntity entity) =>
        entity.Offset + entity.Length <= text.Length ? text.Substring(entity.Offset, entity.Length) : "";

    private static string StripMention(string text, MessageEntity[] entities, User me)
    {
        foreach (var entity in entities.Where(e => e.Type == MessageEntityType.Mention).OrderByDescending(e => e.Offset))
        {
            if (string.Equals(Slice(text, entity), "@" + me.Username, StringComparison.OrdinalIgnoreCase))
            {
                text = text.Remove(entity.Offset, entity.Length);
            }
        }
        return text;
    }

    /// <summary>A chat's external id: its id, or "id:thread" for a forum topic.</summary>
    private static string ExternalId(Message message) =>
        message.IsTopicMessage && message.MessageThreadId is int thread
            ? $"{message.Chat.Id.ToString(CultureInfo.InvariantCulture)}:{thread.ToString(CultureInfo.InvariantCulture)}"
            : message.Chat.Id.ToString(CultureInfo.InvariantCulture);

    private static (long ChatId, int? Thread) ParseExternal(string external)
    {
        var colon = external.IndexOf(':', StringComparison.Ordinal);
        return colon < 0
            ? (long.Parse(external, CultureInfo.InvariantCulture), null)
            : (long.Parse(external[..colon], CultureInfo.InvariantCulture), int.Parse(external[(colon + 1)..], CultureInfo.InvariantCulture));
    }

    private static string PersonName(User user)
    {
        var name = string.Join(' ', new[] { user.FirstName, user.LastName }.Where(n => !string.IsNullOrWhiteSpace(n)));
        return name.Length > 0 ? name : user.Username ?? user.Id.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The chat's name for its Loop channel (the group's title, the topic, the person), renaming
    /// the channel when the chat was renamed since.</summary>
    private async Task<string> NameAsync(string chat, Message message, CancellationToken cancellationToken)
    {
        var name = message.Chat.Type == ChatType.Private
            ? PersonName(message.From!) + (message.From!.Username is { } username ? $" (@{username})" : "")
            : message.Chat.Title ?? $"telegram-{message.Chat.Id}";
        if (message.IsTopicMessage && message.MessageThreadId is int thread)
        {
            name += " / " + (message.ReplyToMessage?.ForumTopicCreated?.Name ?? $"topic {thread}");
        }
        if (_chatNames.TryGetValue(chat, out var known) && known != name)
        {
            await _channels.NameChatChannelsAsync(PlatformName, new Dictionary<string, string> { [chat] = name }, cancellationToken);
        }
        _chatNames[chat] = name;
        return name;
    }

    /// <summary>Tells a stranger, at most once per <see cref="TelegramTimings.Refusal"/>, how to be let in.</summary>
    private async Task RefuseAsync(string chat, Message message, User from, CancellationToken cancellationToken)
    {
        if (!await _channels.TellStrangerAsync(Connector.Id, from.Id.ToString(CultureInfo.InvariantCulture), _time.GetUtcNow(), _options.Timings.Refusal, cancellationToken))
        {
            _logger.LogDebug("Ignored a message from Telegram user {UserId}, who is not on the whitelist (already told)", from.Id);
            return;
        }
        _logger.LogInformation("Telegram user {UserId} (@{Username}) is not on the whitelist of connector {Connector}; told once", from.Id, from.Username, Connector.Id);
        var who = from.Username is { } username ? $"user id {from.Id}, username @{username}" : $"user id {from.Id}";
        var text = $"Sorry, I only talk to people the owner of this bot has allowed. To be let in, ask them to add you ({who}) to the allowed users.";
        Track(SendInOrderAsync(chat, () => SendPlainAsync(chat, text, message.Id, _stop.Token)));
    }

    private async Task RunCommandAsync(string chat, Message message, string command, string arguments, CancellationToken cancellationToken)
    {
        string answer;
        try
        {
            // Whoever the whitelist lets in may chat and read; once the connector has owners, only they change things.
            var changes = command is "schedule" or "cancel" or "toggle" || (command == "budget" && arguments.Trim().Length > 0);
            if (changes && await RoleOfAsync(message.From, cancellationToken) != ChatRole.Owner)
            {
                throw new LoopForbiddenException($"only an owner of this bot may {(command == "budget" ? "set budgets" : $"use /{command}")}: members may chat, list tasks and see the status and budget");
            }
            var channelId = await LoopChannelForAsync(chat, message, cancellationToken);
            answer = await _commands.ExecuteAsync(command, arguments, channelId, cancellationToken);
        }
        catch (Exception error) when (error is LoopNotFoundException or LoopConflictException or LoopForbiddenException)
        {
            answer = $"❌ {TelegramFormatter.EscapeMarkdown(error.Message)}";
        }
        catch (LoopValidationException invalid)
        {
            var usage = command switch
            {
                "schedule" => TelegramCommands.Usage,
                "budget" => TelegramCommands.BudgetUsage,
                _ => null,
            };
            answer = $"❌ {TelegramFormatter.EscapeMarkdown(invalid.Message)}" + (usage is null ? "" : "\n" + TelegramFormatter.EscapeMarkdown(usage));
        }
        Track(SendInOrderAsync(chat, () => SendFormattedAsync(chat, answer, message.Id, _stop.Token)));
    }

    private async Task<string> LoopChannelForAsync(string chat, Message message, CancellationToken cancellationToken)
    {
        if (await _channels.FindChatChannelAsync(PlatformName, chat, cancellationToken) is { } bound)
        {
            return bound.Id;
        }
        return (await _channels.EnsureChatChannelAsync(PlatformName, chat, await NameAsync(chat, message, cancellationToken), cancellationToken)).Id;
    }

    private async Task RegisterCommandsAsync(CancellationToken cancellationToken)
    {
        try
        {
            await WithRetryAsync(ct => _bot.SetMyCommands(TelegramCommands.Definitions(), cancellationToken: ct), cancellationToken);
            _logger.LogInformation("Registered the bot's commands with Telegram");
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Registering the bot's commands failed");
            _events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), null, null, $"{Connector.Name}: registering commands failed: {error.Message}"));
        }
    }

    // ---- outbound: run events ----

    private Task OnRunEventAsync(ChatRunEvent run, CancellationToken cancellationToken)
    {
        if (_statuses.Observe(run, _time.GetUtcNow()) is { } status)
        {
            Track(status.Completion);
        }
        if (run.IsOutput)
        {
            return Task.CompletedTask;
        }
        if (!run.Ended)
        {
            StartTyping(run.Chat, run.Run.Id);
            return Task.CompletedTask;
        }
        var typing = StopTyping(run.Chat, run.Run.Id);
        Track(SendInOrderAsync(run.Chat, async () =>
        {
            await typing;
            await PostReplyAsync(run.Chat, run.Run, run.Text, _stop.Token);
        }));
        return Task.CompletedTask;
    }

    /// <summary>The run's status message: sent in the chat's order of posts (so before the reply), then
    /// edited in place, the last time without its Stop button. The reply is a message of its own.</summary>
    private RunStatusReporter StartStatus(ChatRunEvent run)
    {
        var runId = run.Run.Id;
        var chat = run.Chat;
        var (chatId, thread) = ParseExternal(chat);
        int? messageId = null;
        var progress = new RunProgress(run.Run.StartedAt ?? _time.GetUtcNow(), run.Channel.Progress, _channels.WorkDirOf(run.Channel));
        // Telegram takes about 20 messages a minute in a group (edits count): 3 s apart keeps a status within it.
        var gap = chatId < 0 ? GroupStatusGap : StatusPacer.DefaultMinGap;
        return RunStatusReporter.Start(runId, progress, new StatusPacer(gap, StatusPacer.DefaultClockGap), ShowAsync, _time, _logger, _stop.Token);

        async Task ShowAsync(StatusView view, CancellationToken cancellationToken)
        {
            // A status is short (its last steps), but it must never be refused for its length.
            var html = TelegramFormatter.ToHtml(TelegramFormatter.Split(view.Text)[0]);
            if (messageId is null)
            {
                Exception? failed = null;
                await SendInOrderAsync(chat, async () =>
                {
                    try
                    {
                        var sent = await WithRetryAsync(ct => _bot.SendMessage(chatId, html, ParseMode.Html, messageThreadId: thread,
                            replyMarkup: StopButton(runId), cancellationToken: ct), cancellationToken);
                        messageId = sent.Id;
                    }
                    catch (Exception error) when (error is not OperationCanceledException)
                    {
                        failed = error;
                    }
                });
                cancellationToken.ThrowIfCancellationRequested();
                if (failed is not null || messageId is null)
                {
                    throw new InvalidOperationException($"posting it failed: {failed?.Message ?? "no message id"}", failed);
                }
                return;
            }
            try
            {
                await WithRetryAsync(ct => _bot.EditMessageText(chatId, messageId.Value, html, ParseMode.Html,
                    replyMarkup: view.Final ? null : StopButton(runId), cancellationToken: ct), cancellationToken);
            }
            catch (ApiRequestException error) when (error.ErrorCode == 400 && error.Message.Contains("message is not modified", StringComparison.OrdinalIgnoreCase))
            {
                // The same text again (the clock shows whole seconds): nothing to change.
            }
        }
    }

    private static InlineKeyboardMarkup StopButton(string runId) => new(InlineKeyboardButton.WithCallbackData("Stop", StopPrefix + runId));

    /// <summary>A press of an inline button: the Stop button of a status message cancels its run, through the
    /// same path as the API's cancel, for an owner, or a member whose messages the run answers (anyone the
    /// whitelist lets in while the bot has no owners). A button only stops a run of the chat it is in. Every
    /// press is answered, so Telegram stops its spinner.</summary>
    private async Task OnCallbackAsync(CallbackQuery query, CancellationToken cancellationToken)
    {
        string? answer = null;
        try
        {
            if (query.Data is { } data && data.StartsWith(StopPrefix, StringComparison.Ordinal) && query.Message is { } message)
            {
                answer = await StopAsync(data[StopPrefix.Length..], ExternalId(message), query.From, cancellationToken);
            }
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Answering Telegram callback query {QueryId} failed", query.Id);
            answer = "Something went wrong; the run was not stopped.";
        }
        try
        {
            await _bot.AnswerCallbackQuery(query.Id, answer, showAlert: answer is not null, cancellationToken: cancellationToken);
        }
        catch (RequestException error)
        {
            _logger.LogDebug("Answering Telegram callback query {QueryId} failed: {Error}", query.Id, error.Message);
        }
    }

    /// <summary>Stops a run for whoever pressed its button; returns what to tell them when it does not.</summary>
    private async Task<string?> StopAsync(string runId, string chat, User from, CancellationToken cancellationToken)
    {
        var channel = await _channels.FindChatChannelAsync(PlatformName, chat, cancellationToken);
        Run run;
        try
        {
            if (channel is null)
            {
                throw new LoopNotFoundException("this chat has no Loop channel");
            }
            // A caller of the channel itself: a button forwarded into another chat cannot stop its run.
            run = await _channels.GetRunAsync(new Caller(channel.Id), runId, cancellationToken);
        }
        catch (Exception refused) when (refused is LoopNotFoundException or LoopForbiddenException)
        {
            return $"This button cannot stop run {runId}: {refused.Message}";
        }
        if (run.Status.IsFinal())
        {
            return "That run has already ended.";
        }
        var role = await RoleOfAsync(from, cancellationToken);
        if (role != ChatRole.Owner
            && !(role == ChatRole.Member && await _channels.IsRunOfAsync(runId, from.Id.ToString(CultureInfo.InvariantCulture), cancellationToken)))
        {
            return role == ChatRole.Member
                ? "Only an owner of this bot may stop a run someone else asked for: members may stop their own."
                : "Only an owner of this bot may stop a run.";
        }
        try
        {
            await _channels.CancelRunAsync(new Caller(channel.Id), runId, cancellationToken);
            _logger.LogInformation("Telegram user {UserId} stopped run {RunId}", from.Id, runId);
        }
        catch (LoopConflictException)
        {
            // It ended meanwhile: its status shows how.
        }
        return null;
    }

    /// <summary>Whether someone is an owner or a member of this bot, by their id and @username.</summary>
    private async Task<ChatRole> RoleOfAsync(User? from, CancellationToken cancellationToken)
    {
        var identities = new[] { from?.Id.ToString(CultureInfo.InvariantCulture), from?.Username is { } name ? "@" + name : null }.OfType<string>().ToList();
        var allowed = from is not null && _options.Allows(from.Id, from.Username);
        return (await _roles.GetAsync(Connector.Id, cancellationToken)).RoleOf(identities, allowed);
    }

    private Task PostReplyAsync(string chat, Run run, string fallback, CancellationToken cancellationToken) =>
        _channels.PostReplyOnceAsync(run.Id, async ct =>
        {
            var (reply, trigger) = await _channels.GetRunAnswerAsync(run.Id, fallback, ct);
            if (run.TaskId is { } taskId)
            {
                reply = $"**⏰ {await TaskNameAsync(taskId, ct)}**\n{reply}";
            }
            var replyTo = int.TryParse(trigger, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : (int?)null;
            var parts = await SendFormattedAsync(chat, reply, replyTo, ct);
            _logger.LogInformation("Posted the reply of run {RunId} to Telegram chat {Chat} in {Parts} part(s)", run.Id, chat, parts);
        }, cancellationToken);

    private async Task<string> TaskNameAsync(string taskId, CancellationToken cancellationToken)
    {
        try
        {
            return (await _tasks.GetAsync(Caller.User, taskId, cancellationToken)).Name;
        }
        catch (LoopNotFoundException)
        {
            return $"task {taskId}";
        }
    }

    /// <summary>Sends Markdown as Telegram HTML in parts of at most 4,096 characters, the first replying
    /// to <paramref name="replyTo"/>; a part whose markup Telegram refuses goes again as plain text.</summary>
    private async Task<int> SendFormattedAsync(string chat, string markdown, int? replyTo, CancellationToken cancellationToken)
    {
        var (chatId, thread) = ParseExternal(chat);
        var parts = TelegramFormatter.Split(markdown);
        for (var i = 0; i < parts.Count; i++)
        {
            var replyParameters = i == 0 && replyTo is int target ? new ReplyParameters { MessageId = target, AllowSendingWithoutReply = true } : null;
            try
            {
                await WithRetryAsync(ct => _bot.SendMessage(chatId, TelegramFormatter.ToHtml(parts[i]), ParseMode.Html,
                    replyParameters: replyParameters, messageThreadId: thread, cancellationToken: ct), cancellationToken);
            }
            catch (ApiRequestException error) when (error.ErrorCode == 400 && error.Message.Contains("can't parse entities", StringComparison.OrdinalIgnoreCase))
            {
                _logger.LogWarning("Telegram refused the formatting of a reply part ({Error}); sending it as plain text", error.Message);
                await WithRetryAsync(ct => _bot.SendMessage(chatId, parts[i], ParseMode.None,
                    replyParameters: replyParameters, messageThreadId: thread, cancellationToken: ct), cancellationToken);
            }
        }
        return parts.Count;
    }

    private async Task SendPlainAsync(string chat, string text, int? replyTo, CancellationToken cancellationToken)
    {
        var (chatId, thread) = ParseExternal(chat);
        var replyParameters = replyTo is int target ? new ReplyParameters { MessageId = target, AllowSendingWithoutReply = true } : null;
        await WithRetryAsync(ct => _bot.SendMessage(chatId, text, ParseMode.None, replyParameters: replyParameters, messageThreadId: thread, cancellationToken: ct), cancellationToken);
    }

    private Task WithRetryAsync(Func<CancellationToken, Task> call, CancellationToken cancellationToken) =>
        WithRetryAsync(async ct =>
        {
            await call(ct);
            return true;
        }, cancellationToken);

    /// <summary>Calls the Bot API, waiting out every 429's retry_after (nothing is dropped) and retrying
    /// a few times after a network failure or a server error.</summary>
    private async Task<T> WithRetryAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        var failures = 0;
        while (true)
        {
            try
            {
                return await call(cancellationToken);
            }
            catch (ApiRequestException error) when (error.Parameters?.RetryAfter is int retryAfter)
            {
                _logger.LogInformation("Telegram asked to wait {Seconds} s (429); sending again then", retryAfter);
                await Task.Delay(TimeSpan.FromSeconds(retryAfter), _time, cancellationToken);
            }
            catch (RequestException error) when (error is not ApiRequestException { ErrorCode: < 500 } && ++failures < 5)
            {
                var wait = Backoff(failures);
                _logger.LogWarning("Telegram request failed: {Error}; again in {Seconds} s", error.Message, wait.TotalSeconds);
                await Task.Delay(wait, _time, cancellationToken);
            }
        }
    }

    /// <summary>Runs sends to one chat one after another, in the order asked.</summary>
    private Task SendInOrderAsync(string chat, Func<Task> send)
    {
        lock (_gate)
        {
            var previous = _outboxTails.GetValueOrDefault(chat, Task.CompletedTask);
            var next = AfterAsync(previous, send);
            _outboxTails[chat] = next;
            return next;
        }

        async Task AfterAsync(Task previous, Func<Task> work)
        {
            await previous.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, System.Threading.Tasks.TaskScheduler.Default);
            try
            {
                await work();
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                _logger.LogError(error, "Posting to Telegram chat {Chat} failed", chat);
                _events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), null, null, $"{Connector.Name}: posting to chat {chat} failed: {error.Message}"));
            }
        }
    }

    private void StartTyping(string chat, string runId)
    {
        lock (_gate)
        {
            if (!_typing.TryGetValue(chat, out var typing))
            {
                var stop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                typing = new Typing(stop, TypeAsync(chat, stop.Token));
                _typing[chat] = typing;
            }
            typing.Runs.Add(runId);
        }
    }

    /// <summary>Stops typing when no other run of the chat is active; returns the typing loop, to wait
    /// for its last request before replying.</summary>
    private Task StopTyping(string chat, string runId)
    {
        lock (_gate)
        {
            if (!_typing.TryGetValue(chat, out var typing))
            {
                return Task.CompletedTask;
            }
            typing.Runs.Remove(runId);
            if (typing.Runs.Count > 0)
            {
                return Task.CompletedTask;
            }
            _typing.Remove(chat);
            typing.Stop.Cancel();
            return typing.Loop.ContinueWith(_ => typing.Stop.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, System.Threading.Tasks.TaskScheduler.Default);
        }
    }

    /// <summary>Telegram shows "typing" for 5 s or until the bot sends: renewed until the run ends.</summary>
    private async Task TypeAsync(string chat, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var (chatId, thread) = ParseExternal(chat);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await _bot.SendChatAction(chatId, ChatAction.Typing, thread, cancellationToken: _stop.Token);
                }
                catch (RequestException error)
                {
                    _logger.LogDebug("Typing in Telegram chat {Chat} failed: {Error}", chat, error.Message);
                }
                await Task.Delay(_options.Timings.TypingEvery, _time, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Track(Task task)
    {
        lock (_gate)
        {
            _background.RemoveAll(t => t.IsCompleted);
            _background.Add(task);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await DisconnectAsync(CancellationToken.None);
        if (_runs is not null)
        {
            await _runs.DisposeAsync();
        }
        await _stop.CancelAsync();
        Task[] pending;
        lock (_gate)
        {
            pending = [.. _background, .. _outboxTails.Values, .. _typing.Values.Select(t => t.Loop)];
        }
        try
        {
            await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // Shutting down: what was cancelled or failed has been logged where it happened.
        }
        _stop.Dispose();
    }

    private sealed record Polling(CancellationTokenSource Stop, Task Loop);

    private sealed record Typing(CancellationTokenSource Stop, Task Loop)
    {
        public HashSet<string> Runs { get; } = new(StringComparer.Ordinal);
    }
}
