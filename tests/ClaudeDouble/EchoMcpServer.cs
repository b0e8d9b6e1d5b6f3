namespace Loop.Tests.ClaudeDouble;

using System.ComponentModel;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

/// <summary><c>claude mcp serve</c>: a stdio MCP server with one tool, <c>echo</c>, so tests can
/// prove the [[mcp]] directive end to end without the daemon's own server.</summary>
public static class EchoMcpServer
{
    public static async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = new McpServerOptions
        {
            ServerInfo = new Implementation { Name = "claude-double", Version = DoubleRun.Version },
            ToolCollection = [McpServerTool.Create(Echo, new McpServerToolCreateOptions { Name = "echo" })],
        };
        await using var server = McpServer.Create(new StdioServerTransport("claude-double"), options);
        await server.RunAsync(cancellationToken);
        return 0;
    }

    [Description("Returns the text it is given.")]
    private static string Echo([Description("Text to return.")] string text) => "echo: " + text;
}
