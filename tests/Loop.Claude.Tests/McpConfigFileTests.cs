namespace Loop.Claude.Tests;

using System.Text.Json;
using Xunit;

public sealed class McpConfigFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-mcp-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Loop_server_runs_loop_mcp_for_the_channel()
    {
        var server = McpConfigFile.LoopServer("/usr/local/bin/loop", "ch_01hx", "http://host.docker.internal:7410");

        Assert.Equal("/usr/local/bin/loop", server.Command);
        Assert.Equal(["mcp", "--channel-id", "ch_01hx", "--api-url", "http://host.docker.internal:7410"], server.Args);
        Assert.Empty(server.Env);
    }

    [Fact]
    public void Written_file_has_the_shape_claude_code_reads()
    {
        var path = Path.Combine(_dir, "sub", "mcp.json");
        McpConfigFile.Write(path, new Dictionary<string, McpServer>
        {
            ["loop"] = McpConfigFile.LoopServer("loop", "ch_1", "http://api"),
            ["other"] = new("node", ["server.js"], new Dictionary<string, string> { ["LOG_LEVEL"] = "debug" }),
        });

        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var servers = doc.RootElement.GetProperty("mcpServers");
        Assert.Equal(["loop", "other"], servers.EnumerateObject().Select(p => p.Name));

        var loop = servers.GetProperty("loop");
        Assert.Equal("stdio", loop.GetProperty("type").GetString());
        Assert.Equal("loop", loop.GetProperty("command").GetString());
        Assert.Equal(["mcp", "--channel-id", "ch_1", "--api-url", "http://api"], loop.GetProperty("args").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(JsonValueKind.Object, loop.GetProperty("env").ValueKind);
        Assert.Equal("debug", servers.GetProperty("other").GetProperty("env").GetProperty("LOG_LEVEL").GetString());
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void File_is_private_to_its_owner_and_rewriting_replaces_it()
    {
        var path = Path.Combine(_dir, "mcp.json");
        McpConfigFile.Write(path, new Dictionary<string, McpServer> { ["a"] = new("x", [], new Dictionary<string, string>()) });
        McpConfigFile.Write(path, new Dictionary<string, McpServer> { ["b"] = new("y", [], new Dictionary<string, string>()) });

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        Assert.Equal(["b"], doc.RootElement.GetProperty("mcpServers").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["mcp.json"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }
}
