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
/// channels show the bot typing and end with a reply (referencing the message that started it);
/// <c>/loop</c> slash commands manage tasks; <c>loop mcp --dir</c> gets a guild channel per directory.
/// </summary>
public sealed partial class DiscordChatAdapter : IChatAdapter
{
    private const string Prefix = "!loop";

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
    private readonly object _gate = new();
    private readonly Dictionary<string, Task> _outboxTails = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Typing> _typing = new(StringComparer.Ordinal);
    private readonly List<Task> _background = [];
    private ConnectorRunFeed? _runs;
    private int _commandsRegistered;

    public DiscordChatAdapter(Connector connector, DiscordOptions options, ChannelService channels, TaskService tasks, ILoopEvents events,
        Func<HealthReport> health, TimeProvider time, ILoggerFactory loggers, BudgetService budgets)
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
    }

    public Connector Connector { get; }

    /// <summary>The id bound Loop channels carry as their platform.</summary>
    private string PlatformName => Connector.Id;

    public string Status => _gateway?.Status ?? "not connected";

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _runs = ConnectorRunFeed.Start(_events, _channels, Connector, OnRunEventAsync, _time, _logger);
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
        var channelName = isDm
            ? $"dm-{(string?)author?["username"] ?? channelId}"
            : _channelNames.TryGetValue(channelId, out var known) ? known : StandInName(channelId);
        try
        {
            var (channel, stored) = await _channels.PostChatMessageAsync(
                new ChatInbound(PlatformName, channelId, channelName, authorName, text, (string?)message["id"], Connector.Kind), cancellationToken);
            _logger.LogInformation("Discord message {MessageId} from {Author} stored as message {StoredId} of channel {ChannelId}",
                (string?)message["id"], authorName, stored.Id, channel.Id);
        }
        catch (LoopValidationException invalid)
        {
            await SendInOrderAsync(channelId, () => _rest.CreateMessageAsync(channelId, $"I can't take that message: {invalid.Message}", (string?)message["id"], _stop.Token));
        }
    }

    /// <summary>The name of a guild channel's Loop channel until the Discord name is known (see <see cref="LearnChannelNamesAsync"/>).</summary>
    private static string StandInName(string discordChannel) => $"discord-{discordChannel}";

    private async Task OnInteractionAsync(JsonNode interaction, CancellationToken cancellationToken)
    {
        var id = (string)interaction["id"]!;
        var token = (string)interaction["token"]!;
        var type = (int?)interaction["type"];
        var data = interaction["data"];
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
            try
            {
                var channelId = await LoopChannelForAsync(interaction, cancellationToken);
                answer = await _commands.ExecuteAsync(path, options, channelId, cancellationToken);
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
