using System.Collections;
using System.Globalization;
using System.Text.Json;
using Loop.Domain.Agents;
using Loop.Domain.Tasks;

namespace Loop.Config;

/// <summary>The loaded configuration and what was ignored on the way: the caller logs the warnings
/// (unknown keys, likely mistakes) and the notices (keys still accepted that no longer do anything).</summary>
public sealed record ConfigLoadResult(LoopConfig Config, IReadOnlyList<string> Warnings)
{
    public IReadOnlyList<string> Notices { get; init; } = [];
}

/// <summary>Builds the global <see cref="LoopConfig"/>: defaults, then &lt;loop home&gt;/config.json,
/// then LOOP_* environment variables, then validation.</summary>
public static class ConfigLoader
{
    private const string EnvironmentSource = "environment variable ";

    /// <summary>Loads from the real process environment.</summary>
    public static ConfigLoadResult Load(LoopPaths paths) => Load(paths, Environment.GetEnvironmentVariables());

    /// <exception cref="ConfigException">The file or a variable is unusable; the message says where and how to fix it.</exception>
    public static ConfigLoadResult Load(LoopPaths paths, IDictionary environment)
    {
        var file = paths.ConfigFile;
        var warnings = new List<string>();
        var notices = new List<string>();
        var config = LoopConfig.Defaults(paths);
        // Where each key's value came from, so a validation error points at the right place.
        var sources = new Dictionary<string, string>();
        var connectors = new ConfigConnectors();

        if (ConfigJson.ReadObjectFile(file) is { } root)
        {
            config = ApplyFile(config, root, file, warnings, sources, connectors);
        }

        config = ApplyEnvironment(config, environment, sources);
        connectors.FromEnvironment(environment, sources);
        if (sources.TryGetValue(ConfigKeys.PollIntervalSec, out var pollSource))
        {
            notices.Add($"{pollSource}: '{ConfigKeys.PollIntervalSec}' is ignored (Loop's scheduler runs on timers, not polling); the setting can be removed");
        }

        Validate(config, sources);
        ValidateTemplates(config, sources);
        config = ResolvePaths(config, paths, sources) with { Connectors = connectors.Check(config, sources) };
        return new ConfigLoadResult(config, warnings) { Notices = notices };
    }

    private static LoopConfig ApplyFile(LoopConfig config, JsonElement root, string file, List<string> warnings, Dictionary<string, string> sources,
        ConfigConnectors connectors)
    {
        foreach (var property in root.EnumerateObject())
        {
            var name = property.Name;
            var value = property.Value;
            if (ConfigKeys.Scalar(name) is { } key)
            {
                config = key.Set(config, key.FromJson(value, file));
                sources[name] = file;
                continue;
            }
            if (ConfigConnectors.IsConnectorKey(name))
            {
                connectors.FromFile(name, value, file, sources);
                continue;
            }

            switch (name)
            {
                case ConfigKeys.Mounts:
                    config = config with { Mounts = ConfigJson.StringList(value, name, file) };
                    break;
                case ConfigKeys.AllowedMountRoots:
                    config = config with { AllowedMountRoots = ConfigJson.StringList(value, name, file) };
                    break;
                case ConfigKeys.AllowedHosts:
                    config = config with { AllowedHosts = ConfigJson.StringList(value, name, file) };
                    break;
                case ConfigKeys.AllowedProjectDirs:
                    config = config with { AllowedProjectDirs = ConfigJson.StringList(value, name, file) };
                    break;
                case ConfigKeys.Mcp:
                    config = config with { McpServers = ConfigJson.McpServers(value, file, warnings) };
                    break;
                case ConfigKeys.TaskTemplates:
                    config = config with { TaskTemplates = ConfigJson.TaskTemplates(value, file, warnings) };
                    break;
                case ConfigKeys.ModelPrices:
                    config = config with { ModelPrices = Config.ModelPrices.Read(value, config.ModelPrices, file) };
                    break;
                case ConfigKeys.PollIntervalSec:
                    // Any value: it is only noted, in Load.
                    break;
                default:
                    warnings.Add(ConfigJson.UnknownKey(name, file));
                    continue;
            }

            sources[name] = file;
        }

        return config;
    }

    private static LoopConfig ApplyEnvironment(LoopConfig config, IDictionary environment, Dictionary<string, string> sources)
    {
        foreach (var key in ConfigKeys.Scalars)
        {
            // An empty variable counts as unset, as shells make "unset" awkward.
            if (environment[key.EnvironmentVariable] is string { Length: > 0 } text)
            {
                config = key.Set(config, key.FromEnvironment(text));
                sources[key.Name] = EnvironmentSource + key.EnvironmentVariable;
            }
        }

        if (environment["LOOP_POLL_INTERVAL_SEC"] is string { Length: > 0 })
        {
            sources[ConfigKeys.PollIntervalSec] = EnvironmentSource + "LOOP_POLL_INTERVAL_SEC";
        }

        // The variables Claude Code itself reads are the fallback for the secrets.
        if (config.AnthropicApiKey is null && environment["ANTHROPIC_API_KEY"] is string { Length: > 0 } apiKey)
        {
            config = config with { AnthropicApiKey = apiKey };
        }

        if (config.ClaudeCodeOauthToken is null && environment["CLAUDE_CODE_OAUTH_TOKEN"] is string { Length: > 0 } oauthToken)
        {
            config = config with { ClaudeCodeOauthToken = oauthToken };
        }

        if (config.AnthropicBaseUrl is null && environment["ANTHROPIC_BASE_URL"] is string { Length: > 0 } baseUrl)
        {
            config = config with { AnthropicBaseUrl = baseUrl };
            sources["anthropic_base_url"] = EnvironmentSource + "ANTHROPIC_BASE_URL";
        }

        return config;
    }

    private static LoopConfig ResolvePaths(LoopConfig config, LoopPaths paths, Dictionary<string, string> sources)
    {
        return config with
        {
            // A relative db_path means "inside the Loop home", wherever the daemon was started.
            DbPath = Path.GetFullPath(paths.ExpandHome(config.DbPath), paths.Home),
            ClaudeBinPath = paths.ExpandHome(config.ClaudeBinPath),
            // Like db_path: a relative one is in the Loop home.
            SystemPromptFile = config.SystemPromptFile is { } systemPrompt ? Path.GetFullPath(paths.ExpandHome(systemPrompt), paths.Home) : null,
            AllowedMountRoots = AbsolutePaths(config.AllowedMountRoots, ConfigKeys.AllowedMountRoots, "~/datasets", paths, sources),
            AllowedProjectDirs = AbsolutePaths(config.AllowedProjectDirs, ConfigKeys.AllowedProjectDirs, "/srv/www", paths, sources),
        };
    }

    private static List<string> AbsolutePaths(IReadOnlyList<string> entries, string key, string example, LoopPaths paths, Dictionary<string, string> sources) =>
        entries.Select(entry =>
        {
            var expanded = paths.ExpandHome(entry);
            return Path.IsPathRooted(expanded)
                ? Path.GetFullPath(expanded)
                : throw new ConfigException(
                    $"{Source(sources, key)}: '{key}' entries must be absolute paths or start with ~/, e.g. \"{key}\": [\"{example}\"] (found \"{entry}\")");
        }).ToList();

    private static void Validate(LoopConfig config, Dictionary<string, string> sources)
    {
        foreach (var key in ConfigKeys.Scalars)
        {
            var positive = key.Get(config) switch
            {
                // 0 turns the rate limit and the task minimum off, and leaves skipping tasks no grace;
                // every other number must be positive.
                int whole => whole > 0 || (whole == 0 && key.Name is "api_rate_limit_per_minute" or "min_task_interval_sec" or "misfire_grace_sec"),
                double number => number > 0 && double.IsFinite(number),
                _ => true,
            };
            if (!positive)
            {
                throw Invalid(config, sources, key, "must be greater than 0");
            }
        }

        if (!ApiAddress.TryParse(config.ApiAddr, out _, out var apiAddrProblem))
        {
            throw Invalid(config, sources, ConfigKeys.Scalar("api_addr")!, apiAddrProblem);
        }

        foreach (var host in config.AllowedHosts)
        {
            if (!ApiAddress.TryParseHost(host, out _, out _))
            {
                throw new ConfigException(
                    $"{Source(sources, ConfigKeys.AllowedHosts)}: '{ConfigKeys.AllowedHosts}' entries must be a host name or host:port, without a scheme or path, e.g. \"allowed_hosts\": [\"loop.example.com\", \"192.168.1.20:8222\"] (found \"{host}\")");
            }
        }

        if (config.AnthropicBaseUrl is { } anthropic
            && !(Uri.TryCreate(anthropic, UriKind.Absolute, out var anthropicUri) && anthropicUri.Scheme is "http" or "https"))
        {
            throw Invalid(config, sources, ConfigKeys.Scalar("anthropic_base_url")!, "must be an absolute http(s) URL");
        }

        if (config.ContainerUser is { } user && (!UnixUser.TryParse(user, out var parsed) || parsed.Uid == 0 || parsed.Gid == 0))
        {
            throw Invalid(config, sources, ConfigKeys.Scalar("container_user")!,
                "must be the numeric \"uid:gid\" of a user other than root (agents never run as uid 0 or group 0)");
        }

        foreach (var (name, value) in new[] { ("container_image", config.ContainerImage), ("db_path", config.DbPath), ("claude_bin_path", config.ClaudeBinPath) })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                throw Invalid(config, sources, ConfigKeys.Scalar(name)!, "must not be empty");
            }
        }
    }

    /// <summary>A template that could never be added (an unknown type, a schedule that does not parse or
    /// fires more often than min_task_interval_sec, a name used twice) is an error at start, not when
    /// someone first adds it.</summary>
    private static void ValidateTemplates(LoopConfig config, Dictionary<string, string> sources)
    {
        var minimum = TaskIntervalMinimum.FromSeconds(config.MinTaskIntervalSec);
        var now = DateTimeOffset.UtcNow;
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < config.TaskTemplates.Count; i++)
        {
            var template = config.TaskTemplates[i];
            ConfigException Invalid(string problem) =>
                new($"{Source(sources, ConfigKeys.TaskTemplates)}: task_templates[{i}] ('{template.Name}'): {problem}");
            if (!names.Add(template.Name))
            {
                throw Invalid("another template has this name; names must differ (they are what /loop template add and the dashboard pick by)");
            }
            if (!TaskWire.TryType(template.Type, out var type))
            {
                throw Invalid($"type must be one of cron, interval, once, loop (found '{template.Type}')");
            }
            TaskSchedule schedule;
            try
            {
                schedule = TaskSchedule.Parse(type, template.Schedule, null, now);
            }
            catch (ScheduleFormatException invalid)
            {
                throw Invalid(invalid.Message);
            }
            if (minimum.Problem(schedule, now) is { } problem)
            {
                throw Invalid(problem);
            }
        }
    }

    private static ConfigException Invalid(LoopConfig config, Dictionary<string, string> sources, ScalarKey key, string problem)
    {
        var value = key.Get(config);
        var source = Source(sources, key.Name);
        if (source.StartsWith(EnvironmentSource, StringComparison.Ordinal))
        {
            return new ConfigException(
                $"{source} {problem}, e.g. {key.EnvironmentVariable}={LoopConfig.Format(key.Example)} (found \"{LoopConfig.Format(value)}\")");
        }

        return new ConfigException(
            $"{source}: '{key.Name}' {problem}, e.g. \"{key.Name}\": {JsonSerializer.Serialize(key.Example)} (found {JsonSerializer.Serialize(value)})");
    }

    private static string Source(Dictionary<string, string> sources, string key) =>
        sources.TryGetValue(key, out var source) ? source : "defaults";
}
