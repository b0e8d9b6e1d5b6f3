namespace Loop.Claude;

using System.Text.Json;

/// <summary>A stdio MCP server for Claude Code's <c>--mcp-config</c>.</summary>
public sealed record McpServer(string Command, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Env);

public static class McpConfigFile
{
    /// <summary>The name under which Loop's own server is injected; the agent sees its tools as
    /// <c>mcp__loop__&lt;tool&gt;</c>.</summary>
    public const string LoopServerName = "loop";

    /// <summary>The <c>loop</c> server: <c>loopCommand mcp --channel-id ID --api-url URL</c>. Its
    /// credentials reach it through the environment the CLI passes down, never through this file.</summary>
    public static McpServer LoopServer(string loopCommand, string channelId, string apiUrl) =>
        new(loopCommand, ["mcp", "--channel-id", channelId, "--api-url", apiUrl], new Dictionary<string, string>());

    /// <summary>The file's text: <c>{"mcpServers":{"name":{"type":"stdio","command":…,"args":[…],"env":{…}}}}</c>.</summary>
    public static string ToJson(IReadOnlyDictionary<string, McpServer> servers)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("mcpServers");
            foreach (var (name, server) in servers.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject(name);
                w.WriteString("type", "stdio");
                w.WriteString("command", server.Command);
                w.WriteStartArray("args");
                foreach (var arg in server.Args)
                {
                    w.WriteStringValue(arg);
                }
                w.WriteEndArray();
                w.WriteStartObject("env");
                foreach (var (key, value) in server.Env.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    w.WriteString(key, value);
                }
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Writes the config to <paramref name="path"/> (owner read/write only, replaced
    /// atomically so a container never sees half a file).</summary>
    public static void Write(string path, IReadOnlyDictionary<string, McpServer> servers)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        try
        {
            using (var stream = new FileStream(temp, options))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(ToJson(servers));
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
