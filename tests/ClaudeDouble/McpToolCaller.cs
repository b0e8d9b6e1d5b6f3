namespace Loop.Tests.ClaudeDouble;

using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

/// <summary>What came of one tool call: the text the model would see, and whether it was an error.</summary>
public sealed record ToolOutcome(string Text, bool IsError);

/// <summary>Talks to one stdio MCP server from the config, as Claude Code does: the server process
/// inherits the CLI's environment with the config's <c>env</c> applied on top.</summary>
public sealed class McpToolCaller(McpServerDeclaration server) : IAsyncDisposable
{
    private McpClient? _client;

    public string ServerName => server.Name;

    /// <summary>Starts the server and completes the MCP handshake; returns the server's tool names.</summary>
    public async Task<IReadOnlyList<string>> ConnectAsync(CancellationToken cancellationToken)
    {
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = server.Name,
            Command = server.Command,
            Arguments = [.. server.Args],
            EnvironmentVariables = server.Env.ToDictionary(kv => kv.Key, kv => (string?)kv.Value),
            // The server's diagnostics stay visible in the run's stderr tail.
            StandardErrorLines = line => Console.Error.WriteLine($"[mcp {server.Name}] {line}"),
        });
        // As for any client on a loaded machine: the server/discover probe gets the whole handshake's time.
        _client = await McpClient.CreateAsync(transport, new McpClientOptions { DiscoverProbeTimeout = Timeout.InfiniteTimeSpan }, cancellationToken: cancellationToken);
        var tools = await _client.ListToolsAsync(cancellationToken: cancellationToken);
        return tools.Select(t => t.Name).ToList();
    }

    public async Task<ToolOutcome> CallAsync(string tool, JsonElement arguments, CancellationToken cancellationToken)
    {
        if (_client is null)
        {
            throw new InvalidOperationException("not connected");
        }
        var args = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (arguments.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in arguments.EnumerateObject())
            {
                args[p.Name] = p.Value.Clone();
            }
        }
        try
        {
            var result = await _client.CallToolAsync(tool, args, cancellationToken: cancellationToken);
            var text = string.Join("\n", result.Content.OfType<TextContentBlock>().Select(b => b.Text));
            if (text.Length == 0 && result.StructuredContent is { } structured)
            {
                text = structured.GetRawText();
            }
            return new ToolOutcome(text, result.IsError == true);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new ToolOutcome(e.Message, true);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }
    }
}
