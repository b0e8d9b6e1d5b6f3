namespace Loop.Config;

using Loop.Domain.Tasks;

/// <summary>What a project's own <c>&lt;project&gt;/.loop/config.json</c> adds. Only
/// <c>mounts</c>, <c>mcp.servers</c>, <c>claude_model</c> and <c>system_prompt_file</c> (a file of
/// the project) may be set there: a project is less trusted than the user's global config.</summary>
public sealed record ProjectConfig(
    string File,
    IReadOnlyList<string> Mounts,
    IReadOnlyDictionary<string, McpServerConfig> McpServers,
    string? ClaudeModel,
    IReadOnlyList<string> Warnings,
    string? SystemPromptFile = null);

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
        string? systemPrompt = null;

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
                    case "system_prompt_file":
                        systemPrompt = ConfigJson.OptionalString(property.Value, property.Name, file);
                        break;
                    case var name when ConfigKeys.All.Contains(name):
                        warnings.Add($"project config {file} may not set '{name}' (ignored): only mounts, mcp, claude_model and system_prompt_file belong in a project config");
                        break;
                    default:
                        warnings.Add(ConfigJson.UnknownKey(property.Name, file));
                        break;
                }
            }
        }

        return new ProjectConfig(file, mounts, servers, string.IsNullOrEmpty(model) ? null : model, warnings,
            string.IsNullOrEmpty(systemPrompt) ? null : systemPrompt);
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
    IReadOnlyList<string> Warnings,
    string? SystemPrompt = null)
{
    /// <summary>The most text of system prompt files a run is given: it travels as one argument, which Linux limits to 128 KiB.</summary>
    public const int MaxSystemPromptBytes = 64 * 1024;

    /// <summary>Global mounts then project mounts; MCP servers merged with the project's winning
    /// on a shared name; the project's claude_model over the global one; the global system prompt
    /// file's text, then the project's.</summary>
    /// <exception cref="ConfigException">The project config is unreadable, or a system prompt file.</exception>
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
            project.Warnings,
            SystemPromptOf(global, project, projectDir));
    }

    private static string? SystemPromptOf(LoopConfig global, ProjectConfig project, string projectDir)
    {
        var parts = new List<string>();
        try
        {
            if (global.SystemPromptFile is { } file)
            {
                // The user's own file, anywhere they like; the project's must stay inside the project.
                parts.Add(PromptFiles.ReadTrusted(file, "system_prompt_file", MaxSystemPromptBytes));
            }
            if (project.SystemPromptFile is { } own)
            {
                parts.Add(PromptFiles.Read(projectDir, own, "system_prompt_file", MaxSystemPromptBytes));
            }
        }
        catch (PromptFileException unreadable)
        {
            throw new ConfigException(unreadable.Message);
        }
        var text = string.Join("\n\n", parts.Select(p => p.Trim()));
        return text.Length == 0 ? null
            : text.Length > MaxSystemPromptBytes ? throw new ConfigException($"the system prompt files hold {text.Length} characters together; at most {MaxSystemPromptBytes} are passed to claude")
            : text;
    }
}
