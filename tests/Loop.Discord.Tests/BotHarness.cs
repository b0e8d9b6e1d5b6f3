namespace Loop.Discord.Tests;

using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Loop.Config;
using Loop.Hosting;
using Loop.Domain.Agents;
using Loop.Domain.Connectors;
using Loop.Runtime;
using Loop.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>What the scripted agent does with a prompt.</summary>
public sealed record AgentScript(string? Reply, int ExitCode = 0, bool TimedOut = false, Task? HoldUntil = null);

/// <summary>
/// A sandbox that answers with the stream-json the <c>claude</c> CLI prints, scripted per prompt,
/// so the bot's logic can be tested against a real <see cref="LoopHost"/> (store, actors, scheduler)
/// without a container. The end-to-end test uses the real container runner instead.
/// </summary>
public sealed class ScriptedSandbox : ISandbox
{
    public Func<string, AgentScript> Script { get; set; } = prompt => new AgentScript($"echo: {prompt}");
    public ConcurrentQueue<string> Prompts { get; } = new();

    /// <summary>The command line of each run, by channel, in the order they ran.</summary>
    public ConcurrentQueue<(string ChannelId, IReadOnlyList<string> Command)> Commands { get; } = new();

    public string Kind => "docker";

    public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
    {
        var prompt = spec.Input; // as the claude CLI reads it: from stdin
        Prompts.Enqueue(prompt);
        Commands.Enqueue((spec.ChannelId, spec.Command));
        var script = Script(prompt);
        onStarted?.Invoke("scripted-" + spec.RunId);
        if (script.HoldUntil is { } hold)
        {
            await hold.WaitAsync(cancellationToken);
        }
        if (script.TimedOut)
        {
            return new SandboxExit(null, TimedOut: true, Cancelled: false, OutOfMemory: false, "", "scripted-" + spec.RunId);
        }
        var session = "session-" + spec.ChannelId;
        await onStdoutLine(Line(new JsonObject
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
        }));
        if (script.ExitCode == 0 && script.Reply is not null)
        {
            await onStdoutLine(Line(new JsonObject
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
            }));
            await onStdoutLine(Line(new JsonObject
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
            }));
        }
        return new SandboxExit(script.ExitCode, TimedOut: false, Cancelled: false, OutOfMemory: false,
            script.ExitCode == 0 ? "" : "scripted failure: the agent crashed", "scripted-" + spec.RunId);
    }

    private static string Line(JsonObject stdoutEvent) => stdoutEvent.ToJsonString();
}

/// <summary>An in-process Loop node with the Discord adapter pointed at a <see cref="DiscordDouble"/>.</summary>
public sealed class BotHarness : IAsyncDisposable
{
    private readonly string _home;
    private readonly LoopHost _host;

    private BotHarness(string home, LoopHost host, ScriptedSandbox sandbox)
    {
        _home = home;
        _host = host;
        Sandbox = sandbox;
    }

    /// <summary>The node's parts, as the adapter sees them.</summary>
    public LoopHost Node => _host;

    /// <summary>The bot of the config's Discord connector, as the node made it.</summary>
    public DiscordChatAdapter Adapter => (DiscordChatAdapter)_host.Get<ChatConnections>().Adapter("discord")!;
    public ScriptedSandbox Sandbox { get; }

    public static async Task<BotHarness> StartAsync(DiscordDouble discord, Func<LoopConfig, LoopConfig>? configure = null, DiscordTimings? timings = null)
    {
        var home = Directory.CreateTempSubdirectory("loop-discord-").FullName;
        var paths = new LoopPaths(home, home);
        var config = LoopConfig.Defaults(paths) with
        {
            DiscordToken = DiscordDouble.Token,
            DiscordAppId = DiscordDouble.AppId,
            DiscordApiUrl = discord.ApiUrl,
            DiscordGatewayUrl = discord.GatewayUrl,
            // Agents never run as root (the scripted sandbox stands in for Docker).
            ContainerUser = AgentUser.TestsRunAsRoot ? AgentUser.ContainerUser : null,
            TaskTemplates =
            [
                new TaskTemplateConfig("daily-summary", "Summarise the day", "0 17 * * *", "cron", "Summarise what was done today"),
                new TaskTemplateConfig("tk-auto-worker", "Work on ready tickets", "*/5 * * * *", "cron", "Check the ticket queue"),
            ],
        };
        config = configure?.Invoke(config) ?? config;
        var sandbox = new ScriptedSandbox();
        // The API is not what these tests are about: it listens on a free port.
        // As the config loader makes the connector of the discord_* keys.
        config = config with
        {
            Connectors =
            [
                new ConfiguredConnector(ConnectorKind.Discord, ConnectorSpec.For(ConnectorKind.Discord).Check(new Dictionary<string, string?>
                {
                    ["token"] = config.DiscordToken,
                    ["app_id"] = config.DiscordAppId,
                    ["guild_id"] = config.DiscordGuildId,
                    ["api_url"] = config.DiscordApiUrl,
                    ["gateway_url"] = config.DiscordGatewayUrl,
                    // These tests count the replies a channel gets; ProgressTests show the status messages.
                    ["progress"] = config.DiscordProgress ?? "off",
                }, [])),
            ],
        };
        timings ??= new DiscordTimings(ReconnectBase: TimeSpan.FromMilliseconds(100), InvalidSessionMax: TimeSpan.FromMilliseconds(200), ServerErrorBackoff: TimeSpan.FromMilliseconds(100));
        var host = LoopHost.Build(new LoopNodeOptions(config with { ApiAddr = $"127.0.0.1:{LoopDaemon.FreePort()}" }, paths, "test-node") { Sandbox = sandbox }, TimeProvider.System,
            logging => logging.SetMinimumLevel(LogLevel.Debug).AddFilter("Orleans", LogLevel.Warning).AddFilter("Microsoft", LogLevel.Warning).AddSimpleConsole(o => o.SingleLine = true),
            parts => parts.AddSingleton<IChatAdapterFactory>(node => new DiscordAdapters(node, TimeProvider.System, timings)));
        await host.StartAsync(CancellationToken.None);
        await Eventually.WaitAsync(() => host.Get<ChatConnections>().Adapter("discord") is not null, "the Discord connector at work");
        return new BotHarness(home, host, sandbox);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
