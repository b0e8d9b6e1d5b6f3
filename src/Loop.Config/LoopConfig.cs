using System.Globalization;
using System.Text;
using Loop.Domain.Runs;

namespace Loop.Config;

public enum RunnerKind
{
    /// <summary>Each run in its own Docker container (the default).</summary>
    Docker,

    /// <summary>Runs as a host process, without isolation.</summary>
    Process,
}

/// <summary>Key <c>log_level</c>: the least severe line the daemon logs.</summary>
public enum LogSeverity
{
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

/// <summary>Key <c>log_format</c>.</summary>
public enum LogFormat
{
    /// <summary>One readable line per entry.</summary>
    Text,

    /// <summary>One JSON object per line, for log collectors.</summary>
    Json,
}

/// <summary>An MCP server given to every agent (key <c>mcp.servers.&lt;name&gt;</c>).</summary>
public sealed record McpServerConfig(string Command, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Env);

/// <summary>A reusable task pattern (key <c>task_templates</c>).</summary>
public sealed record TaskTemplateConfig(string Name, string? Description, string Schedule, string Type, string Prompt);

/// <summary>The global configuration (<c>&lt;loop home&gt;/config.json</c> plus LOOP_* variables).
/// Property names mirror the snake_case keys of the file. Build one with <see cref="ConfigLoader.Load"/>
/// or <see cref="Defaults"/>.</summary>
public sealed record LoopConfig
{
    public string? DiscordToken { get; init; }
    public string? DiscordAppId { get; init; }
    public string? DiscordGuildId { get; init; }
    public LogSeverity LogLevel { get; init; } = LogSeverity.Info;
    public LogFormat LogFormat { get; init; } = LogFormat.Text;
    public string ContainerImage { get; init; } = "loop-agent:latest";
    public int ContainerTimeoutSec { get; init; } = 300;
    public int ContainerMemoryMb { get; init; } = 512;
    public double ContainerCpus { get; init; } = 1.0;
    public string? ClaudeModel { get; init; }

    /// <summary>A file whose text every run's agent gets after its system prompt (<c>--append-system-prompt</c>); absolute once loaded.</summary>
    public string? SystemPromptFile { get; init; }

    /// <summary>"host_path:container_path[:ro|:rw]" as written; see <see cref="MountResolver"/>.</summary>
    public IReadOnlyList<string> Mounts { get; init; } = [];

    /// <summary>Key <c>mcp.servers</c>.</summary>
    public IReadOnlyDictionary<string, McpServerConfig> McpServers { get; init; } = new Dictionary<string, McpServerConfig>();

    public IReadOnlyList<TaskTemplateConfig> TaskTemplates { get; init; } = [];

    /// <summary>Key <c>model_prices</c>: USD per million tokens by model id (see <see cref="Config.ModelPrices"/>).</summary>
    public IReadOnlyDictionary<string, ModelPrice> ModelPrices { get; init; } = Config.ModelPrices.Defaults;

    /// <summary>host:port the REST API listens on.</summary>
    public string ApiAddr { get; init; } = "127.0.0.1:8222";

    /// <summary>Host names (or host:port) the API answers to besides localhost and IP addresses
    /// on its port; see <see cref="ApiAddress.TryParseHost"/>.</summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>Absolute path of the SQLite database (default &lt;loop home&gt;/loop.db).</summary>
    public required string DbPath { get; init; }

    public string ClaudeBinPath { get; init; } = "claude";
    public RunnerKind Runner { get; init; } = RunnerKind.Docker;
    public int MaxConcurrentContainers { get; init; } = 3;

    /// <summary>Absolute host directories outside a project that its project config may mount.</summary>
    public IReadOnlyList<string> AllowedMountRoots { get; init; } = [];

    /// <summary>Directories a channel may have as its project even though the rules refuse them (a
    /// system directory, one that holds the Loop home); see <see cref="ProjectDirRules"/>.</summary>
    public IReadOnlyList<string> AllowedProjectDirs { get; init; } = [];

    public int ContainerPidsLimit { get; init; } = 256;

    /// <summary>The shortest time between two runs of a cron or interval task; 0 turns the minimum off.</summary>
    public int MinTaskIntervalSec { get; init; } = 60;

    /// <summary>How late (seconds) a task's slot may fire before it counts as missed, which a task
    /// with misfire "skip" lets go.</summary>
    public int MisfireGraceSec { get; init; } = 60;

    /// <summary>Numeric "uid:gid" every agent container runs as; never root. Null: the daemon's own
    /// user, or, when the daemon is root, the owner of each run's project directory.</summary>
    public string? ContainerUser { get; init; }

    /// <summary>API requests per client IP per minute; 0 turns the limit off.</summary>
    public int ApiRateLimitPerMinute { get; init; } = 120;

    /// <summary>Secret: never logged (see <see cref="ToString"/>).</summary>
    public string? AnthropicApiKey { get; init; }

    /// <summary>Secret: never logged (see <see cref="ToString"/>).</summary>
    public string? ClaudeCodeOauthToken { get; init; }

    /// <summary>Where direct mode calls the Messages API (null: Anthropic's own, https://api.anthropic.com).
    /// Also read from ANTHROPIC_BASE_URL.</summary>
    public string? AnthropicBaseUrl { get; init; }

    /// <summary>Overrides Discord's REST base URL (tests, proxies).</summary>
    public string? DiscordApiUrl { get; init; }

    /// <summary>Overrides Discord's gateway URL (tests, proxies).</summary>
    public string? DiscordGatewayUrl { get; init; }

    /// <summary>How the agents of the Discord bot's channels run: "container" or "direct" (null: container).</summary>
    public string? DiscordMode { get; init; }

    /// <summary>The model of the Discord bot's channels (null: <see cref="ClaudeModel"/>).</summary>
    public string? DiscordModel { get; init; }

    /// <summary>What the Discord bot's new channels show while a run works: "off", "tools" or "verbose" (null: tools).</summary>
    public string? DiscordProgress { get; init; }

    /// <summary>The connectors config.json declares (telegram_*, email_*, whatsapp_*, and Discord's keys).
    /// Their credentials are secrets: never logged.</summary>
    public IReadOnlyList<ConfiguredConnector> Connectors { get; init; } = [];

    public static LoopConfig Defaults(LoopPaths paths) => new() { DbPath = paths.DefaultDatabaseFile };

    /// <summary>Every setting by its file key, secrets masked: safe to log.</summary>
    public override string ToString()
    {
        var text = new StringBuilder("LoopConfig { ");
        foreach (var key in ConfigKeys.Scalars)
        {
            text.Append(key.Name).Append(" = ").Append(key.Display(this)).Append(", ");
        }

        text.Append("mounts = [").Append(string.Join(", ", Mounts)).Append("], ");
        text.Append("allowed_mount_roots = [").Append(string.Join(", ", AllowedMountRoots)).Append("], ");
        text.Append("allowed_hosts = [").Append(string.Join(", ", AllowedHosts)).Append("], ");
        text.Append("allowed_project_dirs = [").Append(string.Join(", ", AllowedProjectDirs)).Append("], ");
        // Server env often carries credentials (DATABASE_URL, tokens): show names only.
        text.Append("mcp.servers = [").Append(string.Join(", ", McpServers.Select(s =>
            $"{s.Key}: {s.Value.Command} (env: {string.Join(", ", s.Value.Env.Keys)})"))).Append("], ");
        text.Append("task_templates = [").Append(string.Join(", ", TaskTemplates.Select(t => t.Name))).Append("], ");
        text.Append("model_prices = [").Append(string.Join(", ", ModelPrices.Keys)).Append("], ");
        text.Append("connectors = [").Append(string.Join(", ", Connectors.Select(c => c.Id))).Append("] }");
        return text.ToString();
    }

    internal static string Mask(string? secret) => secret is null ? "(not set)" : "***";

    internal static string Format(object? value) => value switch
    {
        null => "null",
        double d => d.ToString("0.0##", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
