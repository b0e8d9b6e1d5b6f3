namespace Loop.Discord;

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>
/// The Discord bot. Messages that address it (a mention, a reply to it, <c>!loop …</c>, any DM)
/// become messages of the Loop channel bound to their Discord channel; runs of Discord-bound
/// channels show the bot typing, a status message with the run's progress and a Stop button (unless the
/// channel's progress is off), and end with a reply (referencing the message that started it);
/// <c>/loop</c> slash commands manage tasks; <c>loop mcp --dir</c> gets a guild channel per directory.
/// </summary>
public sealed partial class DiscordChatAdapter : IChatAdapter
{
    private const string Prefix = "!loop";
    private const string StopPrefix = "loop:stop:";

    private readonly DiscordOptions _options;
    private readonly ChannelService _channels;
    private readonly TaskService _tasks;
    private readonly ILoopEvents _events;
    private int _disposed;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DiscordRestClient _rest;
    private readonly ILoggerFactory _loggers;
    private DiscordGatewayClient? _gateway;
    private readonly SlashCommands _commands;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, string> _channelNames = new(StringComparer.Ordinal);
    /// <summary>Threads /loop fork is starting with a worktree (parent channel, name): Discord's THREAD_CREATE for one
    /// may come before the call that starts it returns, and the fork it makes must be the one asked for.</summary>
    private readonly ConcurrentDictionary<(string Parent, string Name), bool> _worktreeThreads = new();
    private readonly object _gate = new();
    private readonly Dictionary<string, Task> _outboxTails = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Typing> _typing = new(StringComparer.Ordinal);
    private readonly ChatRunStatuses _statuses;
    private readonly List<Task> _background = [];
    private ConnectorRunFeed? _runs;
    private readonly ChatRoleBook _roles;
    private int _commandsRegistered;

    public DiscordChatAdapter(Connector connector, DiscordOptions options, ChannelService channels, TaskService tasks, ILoopEvents events,
        Func<HealthReport> health, TimeProvider time, ILoggerFactory loggers, BudgetService budgets, ChatRoleBook roles)
    {
        Connector = connector;
        _options = options;
        _channels = channels;
        _tasks = tasks;
        _events = events;
        _time = time;
        _logger = loggers.CreateLogger<DiscordChatAdapter>();
        _loggers = loggers;
        _rest = new DiscordRestClient(options, time, loggers.CreateLogger<DiscordRestClient>());
        _commands = new SlashCommands(tasks, health, budgets);
        _roles = roles;
        _statuses = new ChatRunStatuses(StartStatus);
    }

    public Connector Connector { get; }

    /// <summary>The id bound Loop channels carry as their platform.</summary>
    private string PlatformName => Connector.Id;

    public string Status => _gateway?.Status ?? "not connected";

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _runs = ConnectorRunFeed.Start(_events, _channels, Connector, OnRunEventAsync, _time, _logger, withOutput: true);
        return Task.CompletedTask;
    }

    public Task ConnectAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_gateway is null && _disposed == 0)
            {
                _gateway = new DiscordGatewayClient(_options, OnDispatchAsync, _time, _loggers.CreateLogger<DiscordGatewayClient>());
                _gateway.Start();
            }
        }
        return Task.CompletedTask;
    }

    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        DiscordGatewayClient? gateway;
        lock (_gate)
        {
            (gateway, _gateway) = (_gateway, null);
        }
        if (gateway is not null)
        {
            await gateway.DisposeAsync();
        }
    }

    // ---- inbound: gateway dispatches ----

    private async Task OnDispatchAsync(string type, JsonNode? data, CancellationToken cancellationToken)
    {
        switch (type)
        {
            case "READY":
                if (Interlocked.Exchange(ref _commandsRegistered, 1) == 0)
                {
                    Track(RegisterCommandsAsync(_stop.Token));
                }
                break;
            case "GUILD_CREATE":
                await LearnChannelNamesAsync(data?["channels"]?.AsArray() ?? [], cancellationToken);
                break;
            case "CHANNEL_CREATE" or "CHANNEL_UPDATE":
                await LearnChannelNamesAsync([data], cancellationToken);
                break;
            case "THREAD_CREATE":
                await OnThreadAsync(data!, cancellationToken);
                break;
            case "MESSAGE_CREATE":
                await OnMessageAsync(data!, cancellationToken);
                break;
            case "INTERACTION_CREATE":
                // Answered off the gateway's receive loop: Discord gives 3 s for the first response.
                Track(OnInteractionAsync(data!, _stop.Token));
                break;
        }
    }

    /// <summary>Keeps the names of guild channels for the Loop channels registered from them. A message
    /// can arrive before its guild's channel list (GUILD_CREATE follows READY, and a busy bot may see a
    /// mention first): its channel is registered under a stand-in name, and takes the real one here, as
    /// does the channel of a Discord channel renamed since. Event-driven rather than a REST look-up per
    /// new channel: Discord sends every guild's channels after each connect and every change after that.</summary>
    private async Task LearnChannelNamesAsync(IEnumerable<JsonNode?> channels, CancellationToken cancellationToken)
    {
        var learnt = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var channel in channels)
        {
            if ((string?)channel?["id"] is { } id && (string?)channel["name"] is { } name
                && (!_channelNames.TryGetValue(id, out var known) || known != name))
            {
                learnt[id] = name;
            }
        }
        var renamed = await _channels.NameChatChannelsAsync(PlatformName, learnt, cancellationToken);
        foreach (var (id, name) in learnt)
        {
            _channelNames[id] = name;
        }
        if (renamed > 0)
        {
            _logger.LogInformation("Named {Count} channel(s) after their Discord channels", renamed);
        }
    }

    private async Task OnMessageAsync(JsonNode message, CancellationToken cancellationToken)
    {
        var author = message["author"];
        var botId = _gateway?.UserId;
        if ((bool?)author?["bot"] == true || (string?)author?["id"] == botId || (string?)message["webhook_id"] is not null)
        {
            return;
        }
        var content = (string?)message["content"] ?? "";
        var channelId = (string)message["channel_id"]!;
        var isDm = message["guild_id"] is null;
        var mentioned = botId is not null && (message["mentions"]?.AsArray().Any(m => (string?)m?["id"] == botId) == true
            || content.Contains($"<@{botId}>", StringComparison.Ordinal) || content.Contains($"<@!{botId}>", StringComparison.Ordinal));
        var repliesToBot = botId is not null && (string?)message["referenced_message"]?["author"]?["id"] == botId;
        var prefixed = content.TrimStart().StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);
        if (!(isDm || mentioned || repliesToBot || prefixed))
        {
            return;
        }

        var text = content.Trim();
        if (prefixed)
        {
            text = text[Prefix.Length..];
        }
        if (botId is not null)
        {
            text = text.Replace($"<@{botId}>", "", StringComparison.Ordinal).Replace($"<@!{botId}>", "", StringComparison.Ordinal);
        }
        text = text.Trim();
        if (text.Length == 0)
        {
            return;
        }
        var authorName = (string?)author?["global_name"] ?? (string?)author?["username"] ?? "someone";
        if (await RoleOfAsync((string?)author?["id"], message["member"], cancellationToken) == ChatRole.None)
        {
            _logger.LogInformation("Discord message {MessageId} from {Author}, who is neither an owner nor a member, not taken", (string?)message["id"], (string?)author?["id"]);
            if (await _channels.TellStrangerAsync(Connector.Id, (string?)author?["id"] ?? "", _time.GetUtcNow(), TimeSpan.FromDays(1), cancellationToken))
            {
                await SendInOrderAsync(channelId, () => _rest.CreateMessageAsync(channelId,
                    "Sorry, I only take requests from this bot's owners and members. Ask an owner to add you (your Discord user id or one of your roles).", (string?)message["id"], _stop.Token));
            }
            return;
        }
        var channelName = isDm
            ? $"dm-{(string?)author?["username"] ?? channelId}"
            : _channelNames.TryGetValue(channelId, out var known) ? known : StandInName(channelId);
        try
        {
            var (channel, stored) = await _channels.PostChatMessageAsync(
                new ChatInbound(PlatformName, channelId, channelName, authorName, text, (string?)message["id"], Connector.Kind, (string?)author?["id"]), cancellationToken);
            _logger.LogInformation("Discord message {MessageId} from {Author} stored as message {StoredId} of channel {ChannelId}",
                (string?)message["id"], authorName, stored.Id, channel.Id);
        }
        catch (LoopValidationException invalid)
        {
            await SendInOrderAsync(channelId, () => _rest.CreateMessageAsync(channelId, $"I can't take that message: {invalid.Message}", (string?)message["id"], _stop.Token));
        }
    }

    /// <summary>A thread started in a Discord channel that has a Loop channel gets a Loop channel of its own,
    /// forked from that one: the thread goes on from the channel's conversation and leaves it as it was.</summary>
    private async Task<Channel?> OnThreadAsync(JsonNode thread, CancellationToken cancellationToken, bool worktree = false)
    {
        if ((string?)thread["id"] is not { } id || (string?)thread["parent_id"] is not { } parent || (int?)thread["type"] is not (10 or 11 or 12))
        {
            return null;
        }
        var name = (string?)thread["name"] ?? StandInName(id);
        _channelNames[id] = name;
        worktree |= _worktreeThreads.TryRemove((parent, name), out _);
        var fork = await _channels.ForkChatChannelAsync(PlatformName, parent, id, name, cancellationToken, worktree);
        if (fork is not null)
        {
            _logger.LogInformation("Discord thread {ThreadId} is channel {ChannelId}, forked from {ParentId}", id, fork.Id, fork.Fork?.ParentId);
        }
        return fork;
    }

    /// <summary>/loop fork: starts a thread in the channel the command came from; the thread is a fork.</summary>
    private async Task<string> ForkAsync(JsonNode interaction, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken)
    {
        var discordChannel = (string?)interaction["channel_id"] ?? (string)interaction["channel"]!["id"]!;
        if ((int?)interaction["channel"]?["type"] is 10 or 11 or 12)
        {
            throw new LoopConflictException("this is a thread already: fork from the channel it was started in");
        }
        var parent = await LoopChannelForAsync(interaction, cancellationToken);
        var name = options.TryGetValue("name", out var given) && !string.IsNullOrWhiteSpace(given)
            ? given.Trim()
            : $"{(await _channels.GetChannelAsync(Caller.User, parent, cancellationToken)).Name}-fork";
        var worktree = options.TryGetValue("worktree", out var asked) && asked == "true";
        if (worktree)
        {
            // Before the thread exists: a refusal then leaves nothing behind.
            await _channels.CheckWorktreeForkAsync(Caller.User, parent, cancellationToken);
        }
        name = name.Length > 100 ? name[..100] : name;
        if (worktree)
        {
            _worktreeThreads[(discordChannel, name)] = true;
        }
        JsonNode thread;
        Channel fork;
        try
        {
            thread = await _rest.StartThreadAsync(discordChannel, name, cancellationToken);
            // The THREAD_CREATE that follows finds the fork made here.
            fork = await OnThreadAsync(thread, cancellationToken, worktree)
                ?? throw new InvalidOperationException($"Discord answered the new thread without its channel: {thread.ToJsonString()}");
        }
        finally
        {
            _worktreeThreads.TryRemove((discordChannel, name), out _);
        }
        return $"Forked this conversation into <#{(string)thread["id"]!}>: talk there to explore it; this channel goes on as it was. (Loop channel `{fork.Id}`"
            + (worktree ? $", working in a git worktree of its own on branch `{ForkWorktree.BranchFor(fork.Id)}`, made on its first run)" : ")");
    }

    /// <summary>What someone may do here: from their user id and, in a server, their role ids.</summary>
    private async Task<ChatRole> RoleOfAsync(string? userId, JsonNode? member, CancellationToken cancellationToken)
    {
        var identities = (member?["roles"]?.AsArray() ?? []).Select(r => (string?)r).OfType<string>().Append(userId ?? "").Where(i => i.Length > 0).ToList();
        return (await _roles.GetAsync(Connector.Id, cancellationToken)).RoleOf(identities, allowedToTalk: true);
    }

    /// <summary>The role of whoever sent an interaction.</summary>
    private Task<ChatRole> RoleOfAsync(JsonNode interaction, CancellationToken cancellationToken) =>
        RoleOfAsync(SenderOf(interaction), interaction["member"], cancellationToken);

    /// <summary>The user id of whoever sent an interaction: a guild member, or a user in a DM.</summary>
    private static string? SenderOf(JsonNode interaction) =>
        (string?)interaction["member"]?["user"]?["id"] ?? (string?)interaction["user"]?["id"];

    /// <summary>The <c>/loop</c> subcommands that change something: an owner's, once roles are configured.</summary>
    private static bool OwnersOnly(string path, IReadOnlyDictionary<string, string> options) =>
        path is "schedule" or "cancel" or "toggle" or "edit" or "template add" or "fork"
        || (path == "budget" && options.Keys.Any(k => k is "daily" or "monthly"));

    /// <summary>The name of a guild channel's Loop channel until the Discord name is known (see <see cref="LearnChannelNamesAsync"/>).</summary>
    private static string StandInName(string discordChannel) => $"discord-{discordChannel}";

    private async Task OnInteractionAsync(JsonNode interaction, CancellationToken cancellationToken)
    {
        var id = (string)interaction["id"]!;
        var token = (string)interaction["token"]!;
        var type = (int?)interaction["type"];
        var data = interaction["data"];
        if (type == 3)
        {
            await OnComponentAsync(interaction, cancellationToken);
            return;
        }
        if ((string?)data?["name"] != "loop")
        {
            return;
        }
        try
        {
            if (type == 4)
            {
                var focused = FindFocused(data?["options"]?.AsArray());
                await _rest.RespondToInteractionAsync(id, token, new JsonObject
                {
                    ["type"] = 8,
                    ["data"] = new JsonObject { ["choices"] = _commands.TemplateChoices(focused ?? "") },
                }, cancellationToken);
                return;
            }
            if (type != 2)
            {
                return;
            }
            // Defer first: the tasks and store may take longer than Discord's 3 s window.
            await _rest.RespondToInteractionAsync(id, token, new JsonObject { ["type"] = 5 }, cancellationToken);
            var appId = _options.AppId ?? _gateway?.ApplicationId ?? (string?)interaction["application_id"]!;
            var (path, options) = SlashCommands.Read(data);
            string answer;
            var role = await RoleOfAsync(interaction, cancellationToken);
            try
            {
                if (role == ChatRole.None)
                {
                    throw new LoopForbiddenException("only this bot's owners and members may use /loop here: ask an owner to add you");
                }
                if (role == ChatRole.Member && OwnersOnly(path, options))
                {
                    throw new LoopForbiddenException($"only an owner of this bot may use /loop {path}{(path == "budget" ? " to set limits" : "")}: members may chat, list tasks and see the status and budget");
                }
                answer = path == "fork"
                    ? await ForkAsync(interaction, options, cancellationToken)
                    : await _commands.ExecuteAsync(path, options, await LoopChannelForAsync(interaction, cancellationToken), cancellationToken);
            }
            catch (Exception error) when (error is LoopValidationException or LoopNotFoundException or LoopConflictException or LoopForbiddenException)
            {
                answer = $"❌ {error.Message}";
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                _logger.LogError(error, "/loop {Command} failed", path);
                answer = $"❌ Something went wrong: {error.Message}";
            }
            var parts = MessageSplitter.Split(answer);
            await _rest.EditOriginalResponseAsync(appId!, token, parts[0], cancellationToken);
            foreach (var part in parts.Skip(1))
            {
                await _rest.CreateFollowupAsync(appId!, token, part, cancellationToken);
            }
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Answering Discord interaction {InteractionId} failed", id);
        }
    }

    /// <summary>A click on a message component: the Stop button of a status message cancels its run, through
    /// the same path as the API's cancel. Once the bot has owners, an owner may stop any run and a member the
    /// runs of their own messages; until then whoever may talk to the bot may. A button only stops a run of
    /// the channel it is in.</summary>
    private async Task OnComponentAsync(JsonNode interaction, CancellationToken cancellationToken)
    {
        var id = (string)interaction["id"]!;
        var token = (string)interaction["token"]!;
        var customId = (string?)interaction["data"]?["custom_id"];
        try
        {
            if (customId is null || !customId.StartsWith(StopPrefix, StringComparison.Ordinal) || (int?)interaction["data"]?["component_type"] != 2)
            {
                // Not one of ours: acknowledged, so Discord does not show the click as failed.
                await _rest.RespondToInteractionAsync(id, token, new JsonObject { ["type"] = 6 }, cancellationToken);
                return;
            }
            var runId = customId[StopPrefix.Length..];
            var discordChannel = (string?)interaction["channel_id"] ?? (string?)interaction["channel"]?["id"];
            var channel = discordChannel is null ? null : await _channels.FindChatChannelAsync(PlatformName, discordChannel, cancellationToken);
            var who = (string?)interaction["member"]?["user"]?["username"] ?? (string?)interaction["user"]?["username"] ?? "someone";
            Run run;
            try
            {
                if (channel is null)
                {
                    throw new LoopNotFoundException("this channel has no Loop channel");
                }
                // A caller of the channel itself: a button copied into another channel cannot stop its run.
                run = await _channels.GetRunAsync(new Caller(channel.Id), runId, cancellationToken);
            }
            catch (Exception refused) when (refused is LoopNotFoundException or LoopForbiddenException)
            {
                await _rest.RespondToInteractionAsync(id, token, new JsonObject
                {
                    ["type"] = 4,
                    ["data"] = new JsonObject { ["content"] = $"❌ This button cannot stop run {runId}: {refused.Message}", ["flags"] = 64 },
                }, cancellationToken);
                return;
            }
            if (run.Status.IsFinal())
            {
                // The button of a run that ended (its status was left behind by a node that stopped): removed.
                await _rest.RespondToInteractionAsync(id, token, new JsonObject
                {
                    ["type"] = 7,
                    ["data"] = new JsonObject { ["components"] = new JsonArray() },
                }, cancellationToken);
                return;
            }
            var role = await RoleOfAsync(interaction, cancellationToken);
            var mayStop = role == ChatRole.Owner
                || (role == ChatRole.Member && SenderOf(interaction) is { } sender && await _channels.IsRunOfAsync(runId, sender, cancellationToken));
            if (!mayStop)
            {
                await _rest.RespondToInteractionAsync(id, token, new JsonObject
                {
                    ["type"] = 4,
                    ["data"] = new JsonObject
                    {
                        ["content"] = role == ChatRole.Member
                            ? "❌ Only an owner of this bot may stop a run someone else asked for: members may stop their own."
                            : "❌ Only an owner of this bot may stop a run.",
                        ["flags"] = 64,
                    },
                }, cancellationToken);
                return;
            }
            // Acknowledged first (Discord allows 3 s); the status message says "Stopped" once the run has ended.
            await _rest.RespondToInteractionAsync(id, token, new JsonObject { ["type"] = 6 }, cancellationToken);
            try
            {
                await _channels.CancelRunAsync(new Caller(channel!.Id), runId, cancellationToken);
                _logger.LogInformation("{User} stopped run {RunId} from Discord", who, runId);
            }
            catch (LoopConflictException)
            {
                // It ended meanwhile: its status shows how.
            }
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Answering Discord component interaction {InteractionId} failed", id);
        }
    }

    private static string? FindFocused(JsonArray? options)
    {
        foreach (var option in options ?? [])
        {
            if ((bool?)option?["focused"] == true)
            {
                return option!["value"]?.ToString();
            }
            if (FindFocused(option?["options"]?.AsArray()) is { } nested)
            {
                return nested;
            }
        }
        return null;
    }

    /// <summary>The Loop channel of the interaction's Discord channel, registered on first use.</summary>
    private async Task<string> LoopChannelForAsync(JsonNode interaction, CancellationToken cancellationToken)
    {
        var discordChannel = (string?)interaction["channel_id"] ?? (string)interaction["channel"]!["id"]!;
        if (await _channels.FindChatChannelAsync(PlatformName, discordChannel, cancellationToken) is { } bound)
        {
            return bound.Id;
        }
        var name = (string?)interaction["channel"]?["name"]
            ?? (_channelNames.TryGetValue(discordChannel, out var known) ? known : null)
            ?? (interaction["guild_id"] is null ? $"dm-{(string?)interaction["user"]?["username"] ?? discordChannel}" : StandInName(discordChannel));
        return (await _channels.EnsureChatChannelAsync(PlatformName, discordChannel, name, cancellationToken)).Id;
    }

    private async Task RegisterCommandsAsync(CancellationToken cancellationToken)
    {
        var appId = _options.AppId ?? _gateway?.ApplicationId;
        if (appId is null)
        {
            _logger.LogError("Cannot register /loop commands: no discord_app_id and none in READY");
            return;
        }
        try
        {
            await _rest.BulkOverwriteCommandsAsync(appId, _options.GuildId, SlashCommands.Definitions(), cancellationToken);
            _logger.LogInformation("Registered /loop commands {Scope}", _options.GuildId is null ? "globally (they may take up to an hour to appear)" : $"in guild {_options.GuildId}");
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Registering /loop commands failed");
            _events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), null, null, $"discord: registering /loop commands failed: {error.Message}"));
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

    /// <summary>The run's status message: created in the channel's order of posts (so before the reply), then
    /// edited in place, the last time without its Stop button. The reply is a message of its own.</summary>
    private RunStatusReporter StartStatus(ChatRunEvent run)
    {
        var runId = run.Run.Id;
        var discordChannel = run.Chat;
        string? messageId = null;
        var progress = new RunProgress(run.Run.StartedAt ?? _time.GetUtcNow(), run.Channel.Progress, _channels.WorkDirOf(run.Channel));
        return RunStatusReporter.Start(runId, progress, new StatusPacer(StatusPacer.DefaultMinGap, StatusPacer.DefaultClockGap), ShowAsync, _time, _logger, _stop.Token);

        async Task ShowAsync(StatusView view, CancellationToken cancellationToken)
        {
            if (messageId is null)
            {
                Exception? failed = null;
                await SendInOrderAsync(discordChannel, async () =>
                {
                    try
                    {
                        messageId = await _rest.CreateMessageAsync(discordChannel, view.Text, null, cancellationToken, StatusNonce(runId), StopButton(runId));
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
            await _rest.EditMessageAsync(discordChannel, messageId, view.Text, view.Final ? [] : StopButton(runId), cancellationToken);
        }
    }

    /// <summary>The status message's one button; its custom id names the run it stops.</summary>
    private static JsonArray StopButton(string runId) =>
    [
        new JsonObject
        {
            ["type"] = 1,
            ["components"] = new JsonArray(new JsonObject { ["type"] = 2, ["style"] = 4, ["label"] = "Stop", ["custom_id"] = StopPrefix + runId }),
        },
    ];

    private static string StatusNonce(string runId) => ReplyNonce(runId, -1);

    private Task PostReplyAsync(string discordChannel, Run run, string fallback, CancellationToken cancellationToken) =>
        _channels.PostReplyOnceAsync(run.Id, async ct =>
        {
            var (reply, trigger) = await _channels.GetRunAnswerAsync(run.Id, fallback, ct);
            if (run.TaskId is { } taskId)
            {
                reply = $"**⏰ {await TaskNameAsync(taskId, ct)}**\n{reply}";
            }
            var parts = MessageSplitter.Split(reply);
            for (var i = 0; i < parts.Count; i++)
            {
                await _rest.CreateMessageAsync(discordChannel, parts[i], i == 0 ? trigger : null, ct, ReplyNonce(run.Id, i));
            }
            _logger.LogInformation("Posted the reply of run {RunId} to Discord channel {DiscordChannel} in {Parts} part(s)", run.Id, discordChannel, parts.Count);
        }, cancellationToken);

    /// <summary>The same for the same part of a run's reply, whichever node posts it: a node that takes over
    /// the reply of one that died after posting it (before the store knew) makes no second message.</summary>
    private static string ReplyNonce(string runId, int part) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{runId}/{part}")))[..25];

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

    /// <summary>Runs sends to one Discord channel one after another, in the order asked.</summary>
    private Task SendInOrderAsync(string discordChannel, Func<Task> send)
    {
        lock (_gate)
        {
            var previous = _outboxTails.GetValueOrDefault(discordChannel, Task.CompletedTask);
            var next = AfterAsync(previous, send);
            _outboxTails[discordChannel] = next;
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
                _logger.LogError(error, "Posting to Discord channel {DiscordChannel} failed", discordChannel);
                _events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), null, null, $"discord: posting to channel {discordChannel} failed: {error.Message}"));
            }
        }
    }

    private void StartTyping(string discordChannel, string runId)
    {
        lock (_gate)
        {
            if (!_typing.TryGetValue(discordChannel, out var typing))
            {
                var stop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                typing = new Typing(stop, TypeAsync(discordChannel, stop.Token));
                _typing[discordChannel] = typing;
            }
            typing.Runs.Add(runId);
        }
    }

    /// <summary>Stops typing when no other run of the channel is active; returns the typing loop, to wait
    /// for its last request before replying (a late one would show "typing" again after the reply).</summary>
    private Task StopTyping(string discordChannel, string runId)
    {
        lock (_gate)
        {
            if (!_typing.TryGetValue(discordChannel, out var typing))
            {
                return Task.CompletedTask;
            }
            typing.Runs.Remove(runId);
            if (typing.Runs.Count > 0)
            {
                return Task.CompletedTask;
            }
            _typing.Remove(discordChannel);
            typing.Stop.Cancel();
            return typing.Loop.ContinueWith(_ => typing.Stop.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, System.Threading.Tasks.TaskScheduler.Default);
        }
    }

    /// <summary>Discord shows "typing" for about 10 s per trigger (or until the bot posts): renew it until the run ends.
    /// A trigger already sent is let finish (only shutdown cuts it short): cut off, it could still reach Discord
    /// after the reply, and show typing again under it.</summary>
    private async Task TypeAsync(string discordChannel, CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await _rest.TriggerTypingAsync(discordChannel, _stop.Token);
                }
                catch (Exception error) when (error is DiscordApiException or HttpRequestException)
                {
                    _logger.LogDebug("Typing in Discord channel {DiscordChannel} failed: {Error}", discordChannel, error.Message);
                }
                await Task.Delay(_options.Timings.Typing, _time, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // ---- channels for directories (loop mcp --dir) ----

    public async Task ChannelRegisteredAsync(Channel channel, CancellationToken cancellationToken)
    {
        if (_options.GuildId is not { } guildId || channel.DirPath is null || channel.ExternalId is not null)
        {
            return;
        }
        var name = ChannelNameFor(channel.DirPath);
        var existing = (await _rest.ListGuildChannelsAsync(guildId, cancellationToken))
            .Where(c => (int?)c?["type"] == 0 && (string?)c?["name"] == name)
            .Select(c => (string)c!["id"]!)
            .ToList();
        foreach (var candidate in existing)
        {
            // A channel of that name from an earlier registration (or made by hand) is reused.
            if (await _channels.BindChatChannelAsync(channel.Id, PlatformName, candidate, cancellationToken))
            {
                _logger.LogInformation("Bound channel {ChannelId} ({Dir}) to the existing Discord channel #{Name}", channel.Id, channel.DirPath, name);
                return;
            }
        }
        var created = await _rest.CreateTextChannelAsync(guildId, name, $"Loop agent for {channel.DirPath}", cancellationToken);
        _channelNames[created] = name;
        if (!await _channels.BindChatChannelAsync(channel.Id, PlatformName, created, cancellationToken))
        {
            throw new InvalidOperationException($"the new Discord channel {created} is already bound to another Loop channel");
        }
        _logger.LogInformation("Created Discord channel #{Name} ({DiscordChannel}) for {Dir}", name, created, channel.DirPath);
    }

    /// <summary>A Discord text channel name for a directory: its last segment, lower case, letters and digits kept, dashes for anything else.</summary>
    public static string ChannelNameFor(string dirPath)
    {
        var last = Path.GetFileName(dirPath.TrimEnd('/', '\\'));
        var name = NotAllowed().Replace(last.ToLowerInvariant(), "-").Trim('-');
        name = Dashes().Replace(name, "-");
        if (name.Length > 100)
        {
            name = name[..100].TrimEnd('-');
        }
        return name.Length == 0 ? "loop" : name;
    }

    [GeneratedRegex(@"[^\p{L}\p{N}_-]+")]
    private static partial Regex NotAllowed();

    [GeneratedRegex("-{2,}")]
    private static partial Regex Dashes();

    private void Track(Task task)
    {
        lock (_gate)
        {
            _background.RemoveAll(t => t.IsCompleted);
            _background.Add(task);
        }
    }

    // The node stops it before the silo stops; the container disposes it again at the end.
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
        _rest.Dispose();
        _stop.Dispose();
    }

    private sealed record Typing(CancellationTokenSource Stop, Task Loop)
    {
        public HashSet<string> Runs { get; } = new(StringComparer.Ordinal);
    }
}
