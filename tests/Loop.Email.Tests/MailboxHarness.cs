namespace Loop.Email.Tests;

using System.Collections.Concurrent;
using System.Net.Security;
using System.Text.Json.Nodes;
using Loop.Config;
using Loop.Domain.Agents;
using Loop.Domain.Connectors;
using Loop.Hosting;
using Loop.Runtime;
using Loop.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>A sandbox that answers every prompt with "echo: &lt;prompt&gt;" in the stream-json the
/// <c>claude</c> CLI prints, and keeps the prompts, so the connector can be tested against a real
/// node (store, grains) without a container. The end-to-end tests run real containers instead.</summary>
public sealed class EchoSandbox : ISandbox
{
    public ConcurrentQueue<string> Prompts { get; } = new();

    public string Kind => "docker";

    public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
    {
        Prompts.Enqueue(spec.Input);
        onStarted?.Invoke("echo-" + spec.RunId);
        var session = "session-" + spec.ChannelId;
        var reply = "echo: " + spec.Input;
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
        await onStdoutLine(new JsonObject
        {
            ["type"] = "result",
            ["subtype"] = "success",
            ["is_error"] = false,
            ["duration_ms"] = 1,
            ["duration_api_ms"] = 1,
            ["num_turns"] = 1,
            ["result"] = reply,
            ["session_id"] = session,
            ["total_cost_usd"] = 0.0001,
            ["usage"] = new JsonObject { ["input_tokens"] = 3, ["output_tokens"] = 1, ["cache_creation_input_tokens"] = 0, ["cache_read_input_tokens"] = 0 },
        }.ToJsonString());
        return new SandboxExit(0, TimedOut: false, Cancelled: false, OutOfMemory: false, "", "echo-" + spec.RunId);
    }
}

/// <summary>An in-process Loop node whose email connector ("email", as config.json's email_* keys
/// make it) reads and answers a mailbox of a <see cref="MailServer"/>.</summary>
public sealed class MailboxHarness : IAsyncDisposable
{
    private readonly string _home;

    private MailboxHarness(string home, LoopHost node, EchoSandbox sandbox)
    {
        _home = home;
        Node = node;
        Sandbox = sandbox;
    }

    public LoopHost Node { get; }
    public EchoSandbox Sandbox { get; }
    public IChatAdapter Adapter => Node.Get<ChatConnections>().Adapter("email")!;

    /// <param name="settings">The connector's settings (imap, smtp, username, password, address, tls).</param>
    public static async Task<MailboxHarness> StartAsync(Dictionary<string, string?> settings, IReadOnlyList<string> allowed,
        EmailTimings? timings = null, RemoteCertificateValidationCallback? certificateCheck = null)
    {
        var home = Directory.CreateTempSubdirectory("loop-email-").FullName;
        var paths = new LoopPaths(home, home);
        var config = LoopConfig.Defaults(paths) with
        {
            ContainerUser = AgentUser.TestsRunAsRoot ? AgentUser.ContainerUser : null,
            Connectors = [new ConfiguredConnector(ConnectorKind.Email, ConnectorSpec.For(ConnectorKind.Email).Check(settings, allowed))],
            ApiAddr = $"127.0.0.1:{LoopDaemon.FreePort()}",
        };
        var sandbox = new EchoSandbox();
        timings ??= new EmailTimings(ReconnectBase: TimeSpan.FromMilliseconds(100), ReconnectMax: TimeSpan.FromMilliseconds(500));
        var node = LoopHost.Build(new LoopNodeOptions(config, paths, "test-node") { Sandbox = sandbox }, TimeProvider.System,
            logging => logging.SetMinimumLevel(LogLevel.Debug).AddFilter("Orleans", LogLevel.Warning).AddFilter("Microsoft", LogLevel.Warning).AddSimpleConsole(o => o.SingleLine = true),
            parts => parts.AddSingleton<IChatAdapterFactory>(sp => new EmailAdapters(sp, TimeProvider.System, timings, certificateCheck)));
        await node.StartAsync(CancellationToken.None);
        return new MailboxHarness(home, node, sandbox);
    }

    /// <summary>Waits until the connector's status starts with <paramref name="prefix"/>.</summary>
    public async Task<string> WaitForStatusAsync(string prefix, TimeSpan? timeout = null)
    {
        string? status = null;
        try
        {
            await Eventually.WaitAsync(() => (status = Node.Get<ChatConnections>().Adapter("email")?.Status)?.StartsWith(prefix, StringComparison.Ordinal) == true,
                "the email connector's status", timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the email connector's status is \"{status}\", not \"{prefix}…\"");
        }
        return status!;
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
