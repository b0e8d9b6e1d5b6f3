namespace Loop.Config;

using System.Collections;
using System.Text.Json;
using Loop.Domain.Connectors;

/// <summary>A connector declared in config.json (one per kind); its id is the kind's name, so the
/// Discord bot's channels keep the platform "discord" they always had.</summary>
public sealed record ConfiguredConnector(ConnectorKind Kind, ConnectorValues Values)
{
    public string Id => ConnectorSpec.Wire(Kind);
}

/// <summary>
/// Reads the connector keys of config.json and their LOOP_* variables: <c>telegram_token</c>,
/// <c>email_imap</c>, <c>whatsapp_allowed_numbers</c>, ... (a kind's name, then one of its settings in
/// <see cref="ConnectorSpec"/>, or its whitelist). Discord's keys are older scalars of <see cref="LoopConfig"/>
/// and join here. Each kind is checked by <see cref="ConnectorSpec.Check"/>, as the API checks it.
/// </summary>
internal sealed class ConfigConnectors
{
    private readonly Dictionary<ConnectorKind, Dictionary<string, string?>> _values = [];
    private readonly Dictionary<ConnectorKind, List<string>> _allowed = [];

    /// <summary>The spec and setting (or whitelist) a top-level key names, if it is a connector key of a
    /// kind other than Discord.</summary>
    public static (ConnectorSpec Spec, string Setting)? Find(string key)
    {
        foreach (var spec in ConnectorSpec.All.Where(s => s.Kind != ConnectorKind.Discord))
        {
            var prefix = ConnectorSpec.Wire(spec.Kind) + "_";
            if (key.StartsWith(prefix, StringComparison.Ordinal) && key[prefix.Length..] is var setting
                && (spec.Setting(setting) is not null || setting == spec.AllowedKey))
            {
                return (spec, setting);
            }
        }
        return null;
    }

    public static bool IsConnectorKey(string key) => Find(key) is not null;

    public void FromFile(string key, JsonElement value, string file, Dictionary<string, string> sources)
    {
        sources[key] = file;
        var (spec, setting) = Find(key)!.Value;
        if (setting == spec.AllowedKey)
        {
            _allowed[spec.Kind] = [.. ConfigJson.StringList(value, key, file)];
            return;
        }
        Values(spec.Kind)[setting] = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.Null => null,
            _ => throw new ConfigException($"{file}: '{key}' must be a string, e.g. \"{key}\": \"{spec.Setting(setting)!.Example}\" (found {ConfigJson.Describe(value)})"),
        };
    }

    /// <summary>LOOP_TELEGRAM_TOKEN and the like; a whitelist variable holds comma-separated entries.</summary>
    public void FromEnvironment(IDictionary environment, Dictionary<string, string> sources)
    {
        foreach (var spec in ConnectorSpec.All.Where(s => s.Kind != ConnectorKind.Discord))
        {
            foreach (var setting in spec.Settings.Select(s => s.Name).Append(spec.AllowedKey!))
            {
                var variable = VariableFor(spec.Kind, setting);
                if (environment[variable] is not string { Length: > 0 } text)
                {
                    continue;
                }
                sources[$"{ConnectorSpec.Wire(spec.Kind)}_{setting}"] = "environment variable " + variable;
                if (setting == spec.AllowedKey)
                {
                    _allowed[spec.Kind] = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
                }
                else
                {
                    Values(spec.Kind)[setting] = text;
                }
            }
        }
    }

    public static string VariableFor(ConnectorKind kind, string setting) => $"LOOP_{ConnectorSpec.Wire(kind)}_{setting}".ToUpperInvariant();

    /// <param name="sources">Where each key was read (a file, a variable), for the error's first words.</param>
    /// <exception cref="ConfigException">A kind's settings are incomplete or malformed.</exception>
    public IReadOnlyList<ConfiguredConnector> Check(LoopConfig config, IReadOnlyDictionary<string, string> sources)
    {
        var connectors = new List<ConfiguredConnector>();
        if (config.DiscordToken is not null)
        {
            var discord = new Dictionary<string, string?>
            {
                ["token"] = config.DiscordToken,
                ["app_id"] = config.DiscordAppId,
                ["guild_id"] = config.DiscordGuildId,
                ["api_url"] = config.DiscordApiUrl,
                ["gateway_url"] = config.DiscordGatewayUrl,
                [ConnectorSpec.ModeSetting] = config.DiscordMode,
                [ConnectorSpec.ModelSetting] = config.DiscordModel,
                [ConnectorSpec.ProgressSetting] = config.DiscordProgress,
            };
            connectors.Add(Checked(ConnectorKind.Discord, discord, null, sources));
        }
        foreach (var kind in _values.Keys.Union(_allowed.Keys).Order())
        {
            connectors.Add(Checked(kind, Values(kind), _allowed.GetValueOrDefault(kind), sources));
        }
        return connectors;
    }

    private static ConfiguredConnector Checked(ConnectorKind kind, Dictionary<string, string?> values, List<string>? allowed, IReadOnlyDictionary<string, string> sources)
    {
        try
        {
            return new ConfiguredConnector(kind, ConnectorSpec.For(kind).Check(values, allowed ?? []));
        }
        catch (ConnectorSettingException problem)
        {
            var prefix = ConnectorSpec.Wire(kind) + "_";
            var key = prefix + problem.Setting;
            // A missing setting was read nowhere: name where the kind's other keys were.
            var source = sources.GetValueOrDefault(key) ?? sources.Where(s => s.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(s => s.Value).First();
            throw new ConfigException($"{source}: '{key}': {problem.Message}");
        }
    }

    private Dictionary<string, string?> Values(ConnectorKind kind) =>
        _values.TryGetValue(kind, out var values) ? values : _values[kind] = new Dictionary<string, string?>(StringComparer.Ordinal);
}
