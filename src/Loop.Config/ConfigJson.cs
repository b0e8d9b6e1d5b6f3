using System.Text.Json;
using System.Text.RegularExpressions;

namespace Loop.Config;

/// <summary>The JSON rules every Loop file follows (config.json, project config, silo.json):
/// comments and trailing commas allowed, syntax errors reported as file:line:column.</summary>
internal static partial class ConfigJson
{
    private static readonly JsonDocumentOptions Options = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>The top-level object of <paramref name="file"/>, or null when the file does not exist.</summary>
    public static JsonElement? ReadObjectFile(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{file}: cannot be read: {e.Message}", e);
        }

        return ParseObject(text, file);
    }

    public static JsonElement ParseObject(string text, string file)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            text = "{}";
        }

        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(text, Options);
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ConfigException(SyntaxError(file, e), e);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ConfigException($"{file}: the file must hold one JSON object, e.g. {{ \"log_level\": \"info\" }} (found {Describe(root)})");
        }

        return root;
    }

    public static IReadOnlyList<string> StringList(JsonElement element, string key, string file)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            throw new ConfigException($"{file}: '{key}' must be a list of strings, e.g. \"{key}\": [\"~/data:~/data:ro\"] (found {Describe(element)})");
        }

        return element.EnumerateArray().Select((item, index) => item.ValueKind == JsonValueKind.String
            ? item.GetString()!
            : throw new ConfigException($"{file}: '{key}[{index}]' must be a string (found {Describe(item)})")).ToList();
    }

    public static string? OptionalString(JsonElement element, string key, string file) => element.ValueKind switch
    {
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Null => null,
        _ => throw new ConfigException($"{file}: '{key}' must be a string (found {Describe(element)})"),
    };

    public static string RequiredString(JsonElement parent, string key, string path, string file)
    {
        if (!parent.TryGetProperty(key, out var element))
        {
            throw new ConfigException($"{file}: '{path}' is missing '{key}'");
        }

        return OptionalString(element, $"{path}.{key}", file)
            ?? throw new ConfigException($"{file}: '{path}.{key}' must be a string, not null");
    }

    /// <summary>Reads the <c>mcp</c> object: <c>{ "servers": { name: { command, args, env } } }</c>.</summary>
    public static Dictionary<string, McpServerConfig> McpServers(JsonElement mcp, string file, List<string> warnings)
    {
        RequireObject(mcp, "mcp", file, "{ \"servers\": { \"db\": { \"command\": \"npx\", \"args\": [], \"env\": {} } } }");
        var servers = new Dictionary<string, McpServerConfig>();
        foreach (var property in mcp.EnumerateObject())
        {
            if (property.Name != "servers")
            {
                warnings.Add(UnknownKey($"mcp.{property.Name}", file));
                continue;
            }

            RequireObject(property.Value, "mcp.servers", file, "{ \"db\": { \"command\": \"npx\" } }");
            foreach (var server in property.Value.EnumerateObject())
            {
                servers[server.Name] = McpServer(server.Value, $"mcp.servers.{server.Name}", file, warnings);
            }
        }

        return servers;
    }

    public static List<TaskTemplateConfig> TaskTemplates(JsonElement element, string file, List<string> warnings)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            throw new ConfigException($"{file}: 'task_templates' must be a list of objects (found {Describe(element)})");
        }

        var templates = new List<TaskTemplateConfig>();
        var index = 0;
        foreach (var item in element.EnumerateArray())
        {
            var path = $"task_templates[{index++}]";
            RequireObject(item, path, file, "{ \"name\": \"daily\", \"schedule\": \"0 17 * * *\", \"type\": \"cron\", \"prompt\": \"...\" }");
            foreach (var property in item.EnumerateObject())
            {
                if (property.Name is not ("name" or "description" or "schedule" or "type" or "prompt"))
                {
                    warnings.Add(UnknownKey($"{path}.{property.Name}", file));
                }
            }

            templates.Add(new TaskTemplateConfig(
                RequiredString(item, "name", path, file),
                item.TryGetProperty("description", out var description) ? OptionalString(description, $"{path}.description", file) : null,
                RequiredString(item, "schedule", path, file),
                RequiredString(item, "type", path, file),
                RequiredString(item, "prompt", path, file)));
        }

        return templates;
    }

    public static string UnknownKey(string key, string file) => $"unknown key '{key}' in {file} (ignored)";

    public static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => $"the string {element.GetRawText()}",
        JsonValueKind.Number => $"the number {element.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"{element.GetRawText()}",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "a list",
        _ => "an object",
    };

    private static McpServerConfig McpServer(JsonElement element, string path, string file, List<string> warnings)
    {
        RequireObject(element, path, file, "{ \"command\": \"npx\", \"args\": [\"-y\", \"server\"], \"env\": { \"KEY\": \"value\" } }");
        IReadOnlyList<string> args = [];
        var env = new Dictionary<string, string>();
        foreach (var property in element.EnumerateObject())
        {
            switch (property.Name)
            {
                case "command":
                    break;
                case "args":
                    args = StringList(property.Value, $"{path}.args", file);
                    break;
                case "env":
                    RequireObject(property.Value, $"{path}.env", file, "{ \"KEY\": \"value\" }");
                    foreach (var variable in property.Value.EnumerateObject())
                    {
                        env[variable.Name] = OptionalString(variable.Value, $"{path}.env.{variable.Name}", file) ?? "";
                    }

                    break;
                default:
                    warnings.Add(UnknownKey($"{path}.{property.Name}", file));
                    break;
            }
        }

        return new McpServerConfig(RequiredString(element, "command", path, file), args, env);
    }

    private static void RequireObject(JsonElement element, string key, string file, string example)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new ConfigException($"{file}: '{key}' must be an object, e.g. \"{key.Split('.')[^1]}\": {example} (found {Describe(element)})");
        }
    }

    // JsonException positions are 0-based; editors count from 1.
    private static string SyntaxError(string file, JsonException e)
    {
        var line = (e.LineNumber ?? 0) + 1;
        var column = (e.BytePositionInLine ?? 0) + 1;
        var what = PositionSuffix().Replace(e.Message, "").Trim();
        return $"{file}:{line}:{column}: {what}";
    }

    [GeneratedRegex(@"\s*(Path: \S*\s*\|\s*)?LineNumber: \d+ \| BytePositionInLine: \d+\.?\s*$")]
    private static partial Regex PositionSuffix();
}
