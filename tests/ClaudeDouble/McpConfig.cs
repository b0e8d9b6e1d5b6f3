namespace Loop.Tests.ClaudeDouble;

using System.Text.Json.Nodes;

/// <summary>A stdio MCP server as declared in an <c>--mcp-config</c> file.</summary>
public sealed record McpServerDeclaration(string Name, string Command, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Env);

public sealed class McpConfigException(string message) : Exception(message);

public static class McpConfig
{
    /// <summary>Reads every <c>--mcp-config</c> value (a file path or an inline JSON string) and merges
    /// their <c>mcpServers</c>; a later config wins on a name clash.</summary>
    public static IReadOnlyDictionary<string, McpServerDeclaration> Load(IEnumerable<string> configs)
    {
        var servers = new Dictionary<string, McpServerDeclaration>(StringComparer.Ordinal);
        foreach (var config in configs)
        {
            string text;
            if (config.TrimStart().StartsWith('{'))
            {
                text = config;
            }
            else
            {
                var path = Path.GetFullPath(config);
                if (!File.Exists(path))
                {
                    throw new McpConfigException($"Error: Invalid MCP configuration:\nMCP config file not found: {path}");
                }
                text = File.ReadAllText(path);
            }

            JsonObject root;
            try
            {
                root = JsonNode.Parse(text) as JsonObject ?? throw new McpConfigException("Error: Invalid MCP configuration:\nMCP config is not a JSON object");
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new McpConfigException($"Error: Invalid MCP configuration:\nMCP config file is not valid JSON: {e.Message}");
            }
            if (root["mcpServers"] is not JsonObject declared)
            {
                throw new McpConfigException("Error: Invalid MCP configuration:\nmcpServers: Required");
            }
            foreach (var (name, node) in declared)
            {
                var command = (string?)node?["command"];
                if (string.IsNullOrEmpty(command))
                {
                    throw new McpConfigException($"Error: Invalid MCP configuration:\nmcpServers.{name}: the double supports stdio servers only (\"command\" is required)");
                }
                var args = node!["args"] is JsonArray a ? a.Select(x => (string?)x ?? "").ToList() : [];
                var env = node["env"] is JsonObject e
                    ? e.ToDictionary(kv => kv.Key, kv => (string?)kv.Value ?? "")
                    : new Dictionary<string, string>();
                servers[name] = new McpServerDeclaration(name, command, args, env);
            }
        }
        return servers;
    }
}
