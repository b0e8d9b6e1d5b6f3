namespace Loop.Mcp.Tests;

using System.Text;
using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

public sealed record ToolResult(string Text, bool IsError)
{
    /// <summary>The JSON object the tool appends after its readable text.</summary>
    public JsonElement Json
    {
        get
        {
            var start = Text.IndexOf("\n{", StringComparison.Ordinal);
            Assert.True(start >= 0, $"no JSON in the tool result:\n{Text}");
            return JsonDocument.Parse(Text[(start + 1)..]).RootElement.Clone();
        }
    }
}

/// <summary>A real MCP client from the SDK, spawning the built <c>loop mcp</c> over stdio.</summary>
public sealed class LoopMcpClient : IAsyncDisposable
{
    private readonly McpClient _client;
    private readonly StringBuilder _stderr;

    private LoopMcpClient(McpClient client, StringBuilder stderr)
    {
        _client = client;
        _stderr = stderr;
    }

    public string Stderr
    {
        get { lock (_stderr) { return _stderr.ToString(); } }
    }

    public static async Task<LoopMcpClient> StartAsync(IReadOnlyDictionary<string, string?>? environment, params string[] mcpArgs)
    {
        var stderr = new StringBuilder();
        var env = new Dictionary<string, string?>
        {
            ["LOOP_CHANNEL_TOKEN"] = null,
            ["LOOP_API_TOKEN"] = null,
            ["LOOP_API_URL"] = null,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            env[key] = value;
        }
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "loop",
            Command = "dotnet",
            Arguments = [LoopCli.LoopDll, "mcp", .. mcpArgs],
            EnvironmentVariables = env,
            StandardErrorLines = line =>
            {
                lock (stderr)
                {
                    stderr.AppendLine(line);
                }
            },
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // The SDK probes with server/discover for 5 s, then falls back to initialize on the same
        // connection, which `loop mcp` (on the newer revision) refuses: on a loaded machine the probe
        // must have all the time the handshake has.
        var options = new McpClientOptions { DiscoverProbeTimeout = Timeout.InfiniteTimeSpan };
        var client = await McpClient.CreateAsync(transport, options, cancellationToken: timeout.Token);
        return new LoopMcpClient(client, stderr);
    }

    public static Task<LoopMcpClient> StartAsync(params string[] mcpArgs) => StartAsync(null, mcpArgs);

    public McpClient Client => _client;

    public async Task<IList<McpClientTool>> ListToolsAsync() => await _client.ListToolsAsync();

    public async Task<ToolResult> CallAsync(string tool, object? arguments = null)
    {
        var args = arguments is null
            ? new Dictionary<string, object?>()
            : JsonSerializer.Deserialize<Dictionary<string, object?>>(JsonSerializer.Serialize(arguments))!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var result = await _client.CallToolAsync(tool, args, cancellationToken: timeout.Token);
        var text = string.Join("\n", result.Content.OfType<TextContentBlock>().Select(b => b.Text));
        return new ToolResult(text, result.IsError == true);
    }

    public async ValueTask DisposeAsync() => await _client.DisposeAsync();
}
