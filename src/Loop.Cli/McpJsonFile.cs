namespace Loop.Cli;

using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Loop.Config;

public enum McpJsonChange
{
    /// <summary>There was no .mcp.json (or it was empty).</summary>
    Created,

    /// <summary>The file had no <c>loop</c> server.</summary>
    Added,

    /// <summary>The <c>loop</c> server was there with other settings.</summary>
    Updated,

    /// <summary>The <c>loop</c> server was there exactly as it would be written.</summary>
    Unchanged,
}

/// <summary>A project's .mcp.json cannot be read or is not shaped as Claude Code expects.</summary>
public sealed class McpJsonException(string message) : Exception(message);

/// <summary>Claude Code's project MCP file: {"mcpServers": {"name": {"command", "args"}}}.
/// Setting the <c>loop</c> server keeps every other server and top-level key as it was.</summary>
public static class McpJsonFile
{
    public const string ServerName = "loop";

    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        // Paths and URLs stay readable (no \u002B for '+').
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The server entry that runs <c>loop mcp</c> for <paramref name="projectDir"/>. A Loop home
    /// other than ~/.loop goes in its env, so <c>loop mcp</c> finds that daemon's local token (a path,
    /// not a credential: the file can be committed).</summary>
    public static JsonObject LoopServer(string command, string projectDir, string apiUrl, LoopPaths paths)
    {
        var server = new JsonObject
        {
            ["command"] = command,
            ["args"] = new JsonArray("mcp", "--dir", projectDir, "--api-url", apiUrl),
        };
        if (paths.Home != Path.Combine(paths.UserHome, ".loop"))
        {
            server["env"] = new JsonObject { ["LOOP_HOME"] = paths.Home };
        }
        return server;
    }

    /// <summary>The new text of the file: <paramref name="existing"/> (null when there is no
    /// file) with mcpServers.loop set to <paramref name="server"/>.</summary>
    /// <exception cref="McpJsonException">The existing text is not valid JSON or not an object of
    /// objects; the message starts with <paramref name="fileName"/>:line:column.</exception>
    public static (string Text, McpJsonChange Change) WithLoopServer(string? existing, string fileName, JsonObject server)
    {
        var change = McpJsonChange.Created;
        JsonObject root = [];
        if (!string.IsNullOrWhiteSpace(existing))
        {
            root = Parse(existing, fileName);
            change = McpJsonChange.Added;
        }

        if (root["mcpServers"] is null)
        {
            root["mcpServers"] = new JsonObject();
        }
        if (root["mcpServers"] is not JsonObject servers)
        {
            throw new McpJsonException($"{fileName}: \"mcpServers\" must be an object of servers, like {{\"mcpServers\": {{\"other\": {{\"command\": \"...\"}}}}}}");
        }

        if (servers[ServerName] is { } current)
        {
            change = JsonNode.DeepEquals(current, server) ? McpJsonChange.Unchanged : McpJsonChange.Updated;
        }
        servers[ServerName] = server.DeepClone();
        return (root.ToJsonString(Indented) + "\n", change);
    }

    /// <summary>Reads <paramref name="path"/>, sets the <c>loop</c> server and writes it back
    /// (atomically, keeping its mode); the file is untouched when it cannot be parsed.</summary>
    public static McpJsonChange SetLoopServer(string path, JsonObject server)
    {
        var existing = File.Exists(path) ? File.ReadAllText(path) : null;
        var (text, change) = WithLoopServer(existing, path, server);
        if (change != McpJsonChange.Unchanged)
        {
            AtomicFile.Write(path, text, mode: null);
        }
        return change;
    }

    private static JsonObject Parse(string text, string fileName)
    {
        JsonNode? node;
        try
        {
            // A duplicate key would otherwise surface later as an exception without a position.
            node = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException error)
        {
            // A duplicate key is found after reading, without a position; its message names the key.
            var where = error.LineNumber is { } line ? $"{fileName}:{line + 1}:{(error.BytePositionInLine ?? 0) + 1}" : fileName;
            throw new McpJsonException($"{where}: not valid JSON: {Reason(error.Message)}. Fix the file (or move it away) and run the command again.");
        }

        return node as JsonObject
            ?? throw new McpJsonException($"{fileName}:1:1: must hold a JSON object, like {{\"mcpServers\": {{}}}}");
    }

    // System.Text.Json appends " Path: $ | LineNumber: 0 | BytePositionInLine: 4." with 0-based
    // numbers; the caller already says where, 1-based as editors count.
    private static string Reason(string message)
    {
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        }
        return (cut < 0 ? message : message[..cut]).TrimEnd('.', ' ');
    }
}
