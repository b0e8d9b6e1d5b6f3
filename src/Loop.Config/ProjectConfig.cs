namespace Loop.Config;

/// <summary>What a project's own <c>&lt;project&gt;/.loop/config.json</c> adds. Only
/// <c>mounts</c>, <c>mcp.servers</c> and <c>claude_model</c> may be set there: a project is
/// less trusted than the user's global config.</summary>
public sealed record ProjectConfig(
    string File,
    IReadOnlyList<string> Mounts,
    IReadOnlyDictionary<string, McpServerConfig> McpServers,
    string? ClaudeModel,
    IReadOnlyList<string> Warnings);

public static class ProjectConfigLoader
{
    public static string FileFor(string projectDir) => Path.Combine(Path.GetFullPath(projectDir), ".loop", "config.json");

    /// <summary>Reads the project config; a project without one gets an empty config.</summary>
    /// <exception cref="ConfigException">The file is not valid JSON or a value has the wrong type.</exception>
    public static ProjectConfig Load(string projectDir)
    {
        var file = FileFor(projectDir);
        var warnings = new List<string>();
        IReadOnlyList<string> mounts = [];
        IReadOnlyDictionary<string, McpServerConfig> servers = new Dictionary<string, McpServerConfig>();
        string? model = null;

        if (ConfigJson.ReadObjectFile(file) is { } root)
        {
            foreach (var property in root.EnumerateObject())
            {
                switch (property.Name)
                {
                    case ConfigKeys.Mounts:
                        mounts = ConfigJson.StringList(property.Value, property.Name, file);
                        break;
                    case ConfigKeys.Mcp:
                        servers = ConfigJson.McpServers(property.Value, file, warnings);
                        break;
                    case "claude_model":
                        model = ConfigJson.OptionalString(property.Value, property.Name, file);
                        break;
                    case var name when ConfigKeys.All.Contains(name):
                        warnings.Add($"project config {file} may not set '{name}' (ignored): only mounts, mcp and claude_model belong in a project config");
                        break;
                    default:
                        warnings.Add(ConfigJson.UnknownKey(property.Name, file));
                        break;
                }
            }
        }

        return new ProjectConfig(file, mounts, servers, string.IsNullOrEmpty(model) ? null : model, warnings);
    }
}

public enum MountOrigin
{
    /// <summary>From the user's global config.json: trusted.</summary>
    Global,

    /// <summary>From the project's .loop/config.json: confined to the project dir and allowed_mount_roots.</summary>
    Project,
}

/// <summary>A mount spec as written, with the config it came from.</summary>
public sealed record ConfiguredMount(string Spec, MountOrigin Origin);

/// <summary>The settings one project's runs use: the global config merged with the project config.</summary>
public sealed record EffectiveSettings(
    string ProjectDir,
    IReadOnlyList<ConfiguredMount> Mounts,
    IReadOnlyDictionary<string, McpServerConfig> McpServers,
    string? ClaudeModel,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Global mounts then project mounts; MCP servers merged with the project's winning
    /// on a shared name; the project's claude_model over the global one.</summary>
    /// <exception cref="ConfigException">The project config is unreadable.</exception>
    public static EffectiveSettings For(LoopConfig global, string projectDir)
    {
        var project = ProjectConfigLoader.Load(projectDir);
        var mounts = global.Mounts.Select(spec => new ConfiguredMount(spec, MountOrigin.Global))
            .Concat(project.Mounts.Select(spec => new ConfiguredMount(spec, MountOrigin.Project)))
            .ToList();
        var servers = new Dictionary<string, McpServerConfig>(global.McpServers);
        foreach (var (name, server) in project.McpServers)
        {
            servers[name] = server;
        }

        return new EffectiveSettings(
            Path.GetFullPath(projectDir),
            mounts,
            servers,
            project.ClaudeModel ?? global.ClaudeModel,
            project.Warnings);
    }
}
