namespace Loop.Telegram.Tests;

using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text.Json.Nodes;
using Loop.Config;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Connectors;
using Loop.Hosting;
using Loop.Runtime;
using Loop.Store;
using Loop.Telegram;
using Loop.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>What the scripted agent does with a prompt.</summary>
public sealed record AgentScript(string? Reply, int ExitCode = 0);

/// <summary>A sandbox that answers with the stream-json the <c>claude</c> CLI prints, scripted per
/// prompt, so the bot runs against a real node (store, grains) without a container.</summary>
public sealed class ScriptedSandbox : ISandbox
{
    public Func<string, AgentScript> Script { get; set; } = prompt => new AgentScript($"echo: {prompt}");
    public ConcurrentQueue<string> Prompts { get; } = new();

    public string Kind => "docker";

    public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
    {
        var prompt = spec.Input;
        Prompts.Enqueue(prompt);
        var script = Script(prompt);
        onStarted?.Invoke("scripted-" + spec.RunId);
        var session = "session-" + spec.ChannelId;
        await onStdoutLine(new JsonObject
        {
            ["type"] = "system",
            ["subtype"] = "init",
            ["cwd"] = spec.WorkDir,
            ["session_id"] = session,
            ["tools"] = new JsonArray(),
            ["mcp_servers"] = new JsonArray(),
            ["model"] = "claude-test",
            ["permissionMode"] = "bypassPermissions",
            ["apiKeySource"] = "none",
        }.ToJsonString());
        if (script.ExitCode == 0 && script.Reply is not null)
        {
            await onStdoutLine(new JsonObject
            {
                ["type"] = "assistant",
                ["session_id"] = session,
                ["message"] = new JsonObject
                {
                    ["id"] = "msg_1",
                    ["type"] = "message",
                    ["role"] = "assistant",
                    ["model"] = "claude-test",
                    ["stop_reason"] = null,
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = script.Reply }),
                    ["usage"] = new JsonObject { ["input_tokens"] = 3, ["output_tokens"] = 1 },
                },
            }.ToJsonString());
            await onStdoutLine(new JsonObject
            {
                ["type"] = "result",
                ["subtype"] = "success",
                ["is_error"] = false,
                ["duration_ms"] = 1,
                ["duration_api_ms"] = 1,
                ["num_turns"] = 1,
                ["result"] = script.Reply,
                ["session_id"] = session,
                ["total_cost_usd"] = 0.0001,
                ["usage"] = new JsonObject { ["input_tokens"] = 3, ["output_tokens"] = 1, ["cache_creation_input_tokens"] = 0, ["cache_read_input_tokens"] = 0 },
            }.ToJsonString());
        }
        return new SandboxExit(script.ExitCode, TimedOut: false, Cancelled: false, OutOfMemory: false,
            script.ExitCode == 0 ? "" : "scripted failure: the agent crashed", "scripted-" + spec.RunId);
    }
}

/// <summary>The system clock moved on by hand (only what reads the time sees it; timers run as usual).</summary>
public sealed class ShiftedClock : TimeProvider
{
    private long _shift;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _shift, by.Ticks);

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _shift));
}

/// <summary>The node's store, which a test can make refuse to take messages in (as a store that is away would).</summary>
public class SwitchableStore : DispatchProxy
{
    private static readonly string[] Writes = ["AppendMessageAsync", "EnsureExternalChannelAsync"];
    private ILoopStore _inner = null!;
    private int _refused;

    public bool Refusing { get; set; }

    /// <summary>How many message writes were refused so far.</summary>
    public int Refused => Volatile.Read(ref _refused);

    public static ILoopStore Over(ILoopStore inner, out SwitchableStore control)
    {
        var proxy = Create<ILoopStore, SwitchableStore>();
        control = (SwitchableStore)(object)proxy;
        control._inner = inner;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        if (Refusing && Writes.Contains(targetMethod!.Name))
        {
            Interlocked.Increment(ref _refused);
            throw new InvalidOperationException("the store is unavailable (test)");
        }
        try
        {
            return targetMethod!.Invoke(_inner, args);
        }
        catch (TargetInvocationException error) when (error.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(error.InnerException);
            throw;
        }
    }
}

/// <summary>An in-process Loop node with the Telegram connector pointed at a <see cref="TelegramDouble"/>.</summary>
public sealed class TelegramHarness : IAsyncDisposable
{
    private readonly string _home;

    private TelegramHarness(string home, LoopHost host, ScriptedSandbox sandbox, SwitchableStore store)
    {
        _home = home;
        Node = host;
        Sandbox = sandbox;
        Store = store;
    }

    public LoopHost Node { get; }
    public ScriptedSandbox Sandbox { get; }
    public SwitchableStore Store { get; }

    public IChatAdapter Adapter => Node.Get<ChatConnections>().Adapter("telegram")!;

    /// <param name="webhook">Webhook mode: Telegram is to call this node's API (/hooks/telegram) instead of being polled.</param>
    public static async Task<TelegramHarness> StartAsync(TelegramDouble telegram, IReadOnlyList<string>? allowed = null, TimeProvider? clock = null,
        string token = TelegramDouble.Token, bool webhook = false)
    {
        var home = Directory.CreateTempSubdirectory("loop-telegram-").FullName;
        var paths = new LoopPaths(home, home);
        var apiAddr = $"127.0.0.1:{LoopDaemon.FreePort()}";
        var config = LoopConfig.Defaults(paths) with
        {
            ContainerUser = AgentUser.TestsRunAsRoot ? AgentUser.ContainerUser : null,
            ApiAddr = apiAddr,
            // As the config loader makes the connector of the telegram_* keys.
            Connectors =
            [
                new ConfiguredConnector(ConnectorKind.Telegram, ConnectorSpec.For(ConnectorKind.Telegram).Check(new Dictionary<string, string?>
                {
                    ["token"] = token,
                    ["api_url"] = telegram.BaseUrl,
                    ["webhook_url"] = webhook ? $"http://{apiAddr}" : null,
                    // The status message while the agent works is ProgressTests' business.
                    ["progress"] = "off",
                }, allowed ?? ["*"])),
            ],
        };
        var sandbox = new ScriptedSandbox();
        SwitchableStore? control = null;
        var timings = new TelegramTimings(PollTimeout: TimeSpan.FromSeconds(5), ReconnectBase: TimeSpan.FromMilliseconds(100), ReconnectMax: TimeSpan.FromMilliseconds(500));
        var host = LoopHost.Build(new LoopNodeOptions(config, paths, "test-node") { Sandbox = sandbox }, TimeProvider.System,
            logging => logging.SetMinimumLevel(LogLevel.Debug).AddFilter("Orleans", LogLevel.Warning).AddFilter("Microsoft", LogLevel.Warning).AddSimpleConsole(o => o.SingleLine = true),
            parts => parts
                .AddSingleton<ILoopStore>(sp => SwitchableStore.Over(sp.GetRequiredService<SqlLoopStore>(), out control))
                .AddSingleton<IChatAdapterFactory>(node => new TelegramAdapters(node, clock ?? TimeProvider.System, timings)));
        await host.StartAsync(CancellationToken.None);
        _ = host.Get<ILoopStore>();
        await Eventually.WaitAsync(() => host.Get<ChatConnections>().Adapter("telegram") is not null, "the Telegram connector at work");
        return new TelegramHarness(home, host, sandbox, control!);
    }

    /// <summary>Waits until the bot holds the connection and is polling (commands registered).</summary>
    public async Task WaitConnectedAsync(TelegramDouble telegram)
    {
        await Eventually.WaitAsync(() => Adapter.Status.StartsWith("connected as", StringComparison.Ordinal), "the bot connected");
        await Eventually.WaitAsync(() => telegram.Commands() is not null, "the commands registered");
    }

    /// <summary>The messages stored in the Loop channel of a chat (none when it has no channel).</summary>
    public async Task<IReadOnlyList<Loop.Domain.Channels.ChatMessage>> StoredAsync(string externalId)
    {
        var channels = Node.Get<ChannelService>();
        return await channels.FindChatChannelAsync("telegram", externalId, CancellationToken.None) is { } channel
            ? await channels.ListMessagesAsync(Caller.User, channel.Id, 0, 500, CancellationToken.None)
            : [];
    }

    public async ValueTask DisposeAsync()
    {
        await Node.DisposeAsync();
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
