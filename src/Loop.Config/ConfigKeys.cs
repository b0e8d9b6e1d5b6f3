using System.Globalization;
using System.Text.Json;

namespace Loop.Config;

internal enum ScalarKind
{
    Text,
    OptionalText,

    /// <summary>A Discord snowflake: a string, though people often write it as a number.</summary>
    Id,
    WholeNumber,
    Number,

    /// <summary>One of a few words (see <see cref="Choice"/>), read in any case.</summary>
    Word,
}

/// <summary>The words a <see cref="ScalarKind.Word"/> key accepts and the values they stand for; the
/// first word of a value is how it is written back.</summary>
/// <param name="Expected">The words as an error names them, e.g. "\"text\" or \"json\"".</param>
internal sealed record Choice(string Expected, IReadOnlyList<(string Word, object Value)> Words)
{
    public object? Find(string text)
    {
        var word = text.Trim().ToLowerInvariant();
        return Words.FirstOrDefault(w => w.Word == word).Value;
    }

    public string WordFor(object value) => Words.First(w => w.Value.Equals(value)).Word;
}

/// <summary>One scalar key of config.json: how to read it from the file or from its LOOP_*
/// variable, and where it lives in <see cref="LoopConfig"/>. File and environment share this
/// table so they cannot disagree on a key's type.</summary>
internal sealed record ScalarKey(
    string Name,
    ScalarKind Kind,
    Func<LoopConfig, object?> Get,
    Func<LoopConfig, object?, LoopConfig> Set,
    bool Secret = false,
    Choice? Choice = null)
{
    public string EnvironmentVariable => "LOOP_" + Name.ToUpperInvariant();

    public string Display(LoopConfig config)
    {
        var value = Get(config);
        return Secret ? LoopConfig.Mask(value as string) : LoopConfig.Format(value);
    }

    /// <summary>A valid value to show in error messages: the default where there is one.</summary>
    public object Example => Get(ConfigKeys.ExampleDefaults) ?? "text";

    public object? FromJson(JsonElement element, string file) => (Kind, element.ValueKind) switch
    {
        (ScalarKind.Text, JsonValueKind.String) => element.GetString(),
        (ScalarKind.OptionalText, JsonValueKind.String) => NullIfEmpty(element.GetString()),
        (ScalarKind.OptionalText or ScalarKind.Id, JsonValueKind.Null) => null,
        (ScalarKind.Id, JsonValueKind.String) => NullIfEmpty(element.GetString()),
        (ScalarKind.Id, JsonValueKind.Number) => element.GetRawText(),
        (ScalarKind.WholeNumber, JsonValueKind.Number) when element.TryGetInt32(out var whole) => whole,
        (ScalarKind.Number, JsonValueKind.Number) => element.GetDouble(),
        (ScalarKind.Word, JsonValueKind.String) when Choice!.Find(element.GetString()!) is { } word => word,
        _ => throw new ConfigException(
            $"{file}: '{Name}' must be {Expected}, e.g. \"{Name}\": {JsonSerializer.Serialize(Example)} (found {ConfigJson.Describe(element)})"),
    };

    public object? FromEnvironment(string text) => Kind switch
    {
        ScalarKind.Text => text,
        ScalarKind.OptionalText or ScalarKind.Id => NullIfEmpty(text),
        ScalarKind.WholeNumber when int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var whole) => whole,
        ScalarKind.Number when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) => number,
        ScalarKind.Word when Choice!.Find(text) is { } word => word,
        _ => throw new ConfigException(
            $"environment variable {EnvironmentVariable} must be {Expected}, e.g. {EnvironmentVariable}={LoopConfig.Format(Example)} (found \"{text}\")"),
    };

    private string Expected => Kind switch
    {
        ScalarKind.Text => "a string",
        ScalarKind.OptionalText => "a string or null",
        ScalarKind.Id => "an id (string or number) or null",
        ScalarKind.WholeNumber => "a whole number",
        ScalarKind.Number => "a number",
        _ => Choice!.Expected,
    };

    private static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;
}

internal static class ConfigKeys
{
    internal static readonly LoopConfig ExampleDefaults = new()
    {
        DbPath = "~/.loop/loop.db",
        ContainerUser = "1000:1000",
        AnthropicBaseUrl = "https://api.anthropic.com",
        DiscordMode = "direct",
        DiscordModel = "claude-sonnet-4-5",
        DiscordProgress = "verbose",
    };

    private static readonly Choice LogLevels = new("one of trace, debug, info, warn, error, critical",
    [
        ("trace", LogSeverity.Trace), ("debug", LogSeverity.Debug), ("info", LogSeverity.Info),
        ("warn", LogSeverity.Warn), ("warning", LogSeverity.Warn), ("error", LogSeverity.Error), ("critical", LogSeverity.Critical),
    ]);

    private static readonly Choice LogFormats = new("\"text\" or \"json\"", [("text", LogFormat.Text), ("json", LogFormat.Json)]);

    private static readonly Choice Runners = new("\"docker\" (each run in a container) or \"process\" (host process, no isolation)",
        [("docker", RunnerKind.Docker), ("process", RunnerKind.Process)]);

    public static readonly IReadOnlyList<ScalarKey> Scalars =
    [
        new("discord_token", ScalarKind.OptionalText, c => c.DiscordToken, (c, v) => c with { DiscordToken = (string?)v }, Secret: true),
        new("discord_app_id", ScalarKind.Id, c => c.DiscordAppId, (c, v) => c with { DiscordAppId = (string?)v }),
        new("discord_guild_id", ScalarKind.Id, c => c.DiscordGuildId, (c, v) => c with { DiscordGuildId = (string?)v }),
        new("log_level", ScalarKind.Word, c => LogLevels.WordFor(c.LogLevel), (c, v) => c with { LogLevel = (LogSeverity)v! }, Choice: LogLevels),
        new("log_format", ScalarKind.Word, c => LogFormats.WordFor(c.LogFormat), (c, v) => c with { LogFormat = (LogFormat)v! }, Choice: LogFormats),
        new("container_image", ScalarKind.Text, c => c.ContainerImage, (c, v) => c with { ContainerImage = (string)v! }),
        new("container_timeout_sec", ScalarKind.WholeNumber, c => c.ContainerTimeoutSec, (c, v) => c with { ContainerTimeoutSec = (int)v! }),
        new("container_memory_mb", ScalarKind.WholeNumber, c => c.ContainerMemoryMb, (c, v) => c with { ContainerMemoryMb = (int)v! }),
        new("container_cpus", ScalarKind.Number, c => c.ContainerCpus, (c, v) => c with { ContainerCpus = (double)v! }),
        new("claude_model", ScalarKind.OptionalText, c => c.ClaudeModel, (c, v) => c with { ClaudeModel = (string?)v }),
        new("system_prompt_file", ScalarKind.OptionalText, c => c.SystemPromptFile, (c, v) => c with { SystemPromptFile = (string?)v }),
        new("api_addr", ScalarKind.Text, c => c.ApiAddr, (c, v) => c with { ApiAddr = (string)v! }),
        new("db_path", ScalarKind.Text, c => c.DbPath, (c, v) => c with { DbPath = (string)v! }),
        new("claude_bin_path", ScalarKind.Text, c => c.ClaudeBinPath, (c, v) => c with { ClaudeBinPath = (string)v! }),
        new("runner", ScalarKind.Word, c => Runners.WordFor(c.Runner), (c, v) => c with { Runner = (RunnerKind)v! }, Choice: Runners),
        new("max_concurrent_containers", ScalarKind.WholeNumber, c => c.MaxConcurrentContainers, (c, v) => c with { MaxConcurrentContainers = (int)v! }),
        new("container_pids_limit", ScalarKind.WholeNumber, c => c.ContainerPidsLimit, (c, v) => c with { ContainerPidsLimit = (int)v! }),
        new("min_task_interval_sec", ScalarKind.WholeNumber, c => c.MinTaskIntervalSec, (c, v) => c with { MinTaskIntervalSec = (int)v! }),
        new("misfire_grace_sec", ScalarKind.WholeNumber, c => c.MisfireGraceSec, (c, v) => c with { MisfireGraceSec = (int)v! }),
        new("container_user", ScalarKind.OptionalText, c => c.ContainerUser, (c, v) => c with { ContainerUser = (string?)v }),
        new("api_rate_limit_per_minute", ScalarKind.WholeNumber, c => c.ApiRateLimitPerMinute, (c, v) => c with { ApiRateLimitPerMinute = (int)v! }),
        new("anthropic_api_key", ScalarKind.OptionalText, c => c.AnthropicApiKey, (c, v) => c with { AnthropicApiKey = (string?)v }, Secret: true),
        new("claude_code_oauth_token", ScalarKind.OptionalText, c => c.ClaudeCodeOauthToken, (c, v) => c with { ClaudeCodeOauthToken = (string?)v }, Secret: true),
        new("discord_api_url", ScalarKind.OptionalText, c => c.DiscordApiUrl, (c, v) => c with { DiscordApiUrl = (string?)v }),
        new("discord_gateway_url", ScalarKind.OptionalText, c => c.DiscordGatewayUrl, (c, v) => c with { DiscordGatewayUrl = (string?)v }),
        new("discord_mode", ScalarKind.OptionalText, c => c.DiscordMode, (c, v) => c with { DiscordMode = (string?)v }),
        new("discord_model", ScalarKind.OptionalText, c => c.DiscordModel, (c, v) => c with { DiscordModel = (string?)v }),
        new("discord_progress", ScalarKind.OptionalText, c => c.DiscordProgress, (c, v) => c with { DiscordProgress = (string?)v }),
        new("anthropic_base_url", ScalarKind.OptionalText, c => c.AnthropicBaseUrl, (c, v) => c with { AnthropicBaseUrl = (string?)v }),
    ];

    public const string Mounts = "mounts";
    public const string AllowedMountRoots = "allowed_mount_roots";
    public const string AllowedHosts = "allowed_hosts";
    public const string AllowedProjectDirs = "allowed_project_dirs";
    public const string Mcp = "mcp";
    public const string TaskTemplates = "task_templates";
    public const string ModelPrices = "model_prices";

    /// <summary>Every top-level key of config.json.</summary>
    public static readonly IReadOnlySet<string> All =
        Scalars.Select(k => k.Name).Concat([Mounts, AllowedMountRoots, AllowedHosts, AllowedProjectDirs, Mcp, TaskTemplates, ModelPrices]).ToHashSet();

    /// <summary>Not in <see cref="All"/>: accepted so that older configs still load, and ignored,
    /// since timers replaced polling.</summary>
    public const string PollIntervalSec = "poll_interval_sec";

    public static ScalarKey? Scalar(string name) => Scalars.FirstOrDefault(k => k.Name == name);
}
