namespace Loop.Domain.Connectors;

using System.Globalization;
using System.Net.Mail;
using Loop.Domain.Channels;

/// <summary>What a setting holds, which decides how it is checked.</summary>
public enum SettingKind
{
    Text,

    /// <summary>A credential: sealed in the store, never shown again.</summary>
    Secret,

    /// <summary>"host:port".</summary>
    HostPort,
    Email,

    /// <summary>An absolute http(s) or ws(s) URL.</summary>
    Url,

    /// <summary>A numeric id (a Discord snowflake, a WhatsApp phone number id).</summary>
    Id,

    /// <summary>One of <see cref="ConnectorSetting.Choices"/>.</summary>
    Choice,

    /// <summary>A model name or alias (see <see cref="ChannelAgent.ModelProblem"/>).</summary>
    Model,
}

/// <param name="Example">A valid value, for error messages and forms.</param>
public sealed record ConnectorSetting(string Name, SettingKind Kind, bool Required, string Example, string Help, IReadOnlyList<string>? Choices = null)
{
    public bool IsSecret => Kind == SettingKind.Secret;
}

/// <summary>A setting given for a connector is missing or malformed; <see cref="Setting"/> names it.</summary>
public sealed class ConnectorSettingException(string setting, string message) : Exception(message)
{
    public string Setting { get; } = setting;
}

/// <summary>A connector's checked values: settings, credentials, and who may talk through it.</summary>
public sealed record ConnectorValues(
    IReadOnlyDictionary<string, string> Settings,
    IReadOnlyDictionary<string, string> Secrets,
    IReadOnlyList<string> Allowed);

/// <summary>
/// The settings of each kind of connector, in one place: the API, the config file (as
/// <c>telegram_token</c>, <c>email_imap</c>, ...) and the dashboard's forms all read them from here,
/// and <see cref="Check"/> is the only place their values are checked.
/// </summary>
/// <param name="AllowedKey">The name of the sender whitelist (allowed_users, ...); null where the
/// platform has none (Discord: anyone in a server with the bot, until roles come).</param>
/// <param name="RolesHelp">What the entries of its <see cref="ChatRoles"/> are; null where the kind has no commands
/// for roles to keep to owners (email, WhatsApp: their whitelists say who may talk).</param>
public sealed record ConnectorSpec(ConnectorKind Kind, IReadOnlyList<ConnectorSetting> Settings, string? AllowedKey, string AllowedExample,
    string? RolesHelp = null)
{
    public const string ModeSetting = "mode";
    public const string ModelSetting = "model";
    public const string ProgressSetting = "progress";

    /// <summary>How the agents of the channels a connector opens run; every kind has these.</summary>
    private static readonly IReadOnlyList<ConnectorSetting> AgentSettings =
    [
        new(ModeSetting, SettingKind.Choice, false, "container",
            "where the agents of its chats run: container (Claude Code in Docker, with tools) or direct (chat only, through the Anthropic API)",
            ["container", "direct"]),
        new(ModelSetting, SettingKind.Model, false, "claude-sonnet-4-5", "the model its chats' agents use; claude_model when left out"),
    ];

    /// <summary>For the platforms whose messages can be edited in place and carry a button.</summary>
    private static readonly ConnectorSetting ProgressChoice = new(ProgressSetting, SettingKind.Choice, false, "tools",
        "what its new chats show while the agent works: tools (a status message listing the tool calls, with a Stop button), verbose (also the agent's remarks) or off",
        ["off", "tools", "verbose"]);

    public static readonly IReadOnlyList<ConnectorSpec> All =
    [
        new(ConnectorKind.Discord,
        [
            new("token", SettingKind.Secret, true, "MTIz…", "the bot token from the Developer Portal (Bot → Reset Token)"),
            new("app_id", SettingKind.Id, false, "123456789012345678", "the application id; read from Discord when left out"),
            new("guild_id", SettingKind.Id, false, "123456789012345678", "a server to register /loop in at once (global commands take up to an hour)"),
            new("api_url", SettingKind.Url, false, "https://discord.com/api/v10", "Discord's REST API (for tests and proxies)"),
            new("gateway_url", SettingKind.Url, false, "wss://gateway.discord.gg", "Discord's gateway (for tests and proxies)"),
            .. AgentSettings,
            ProgressChoice,
        ], null, "", "Discord user ids and role ids (everyone with a listed role)"),
        new(ConnectorKind.Telegram,
        [
            new("token", SettingKind.Secret, true, "123456:ABC-DEF…", "the bot token @BotFather gave"),
            new("webhook_url", SettingKind.Url, false, "https://loop.example.com",
                "this Loop's public https address: Telegram then sends updates to <webhook_url>/hooks/<connector id> instead of being polled"),
            new("api_url", SettingKind.Url, false, "https://api.telegram.org", "the Bot API server (for tests, proxies and local Bot API servers)"),
            .. AgentSettings,
            ProgressChoice,
        ], "allowed_users", "[\"123456789\", \"@alice\"]", "Telegram user ids or @usernames"),
        new(ConnectorKind.Email,
        [
            new("imap", SettingKind.HostPort, true, "imap.example.com:993", "the IMAP server mail arrives on"),
            new("smtp", SettingKind.HostPort, true, "smtp.example.com:587", "the SMTP server replies go out through"),
            new("username", SettingKind.Text, true, "loop@example.com", "the login for both servers"),
            new("password", SettingKind.Secret, true, "…", "the password (or app password) for both servers"),
            new("address", SettingKind.Email, true, "loop@example.com", "the address replies are sent from"),
            new("tls", SettingKind.Choice, false, "auto", "auto (TLS on 993 and 465, STARTTLS elsewhere), starttls, tls or none", ["auto", "starttls", "tls", "none"]),
            .. AgentSettings,
        ], "allowed_senders", "[\"alice@example.com\", \"@example.com\"]"),
        new(ConnectorKind.WhatsApp,
        [
            new("phone_number_id", SettingKind.Id, true, "106540352242922", "the phone number id of the WhatsApp Business account (Meta's app dashboard)"),
            new("access_token", SettingKind.Secret, true, "EAAG…", "a system user's access token with whatsapp_business_messaging"),
            new("app_secret", SettingKind.Secret, true, "…", "the app secret, to check the signature of each webhook call"),
            new("verify_token", SettingKind.Secret, true, "…", "any phrase; the same one goes into the webhook's settings at Meta"),
            new("api_url", SettingKind.Url, false, "https://graph.facebook.com/v21.0", "the Graph API (for tests and proxies)"),
            .. AgentSettings,
        ], "allowed_numbers", "[\"+15551234567\"]"),
    ];

    public static ConnectorSpec For(ConnectorKind kind) => All.Single(s => s.Kind == kind);

    /// <summary>The kind's name as users write it: discord, telegram, email, whatsapp.</summary>
    public static string Wire(ConnectorKind kind) => kind.ToString().ToLowerInvariant();

    public static ConnectorKind ParseKind(string? text) =>
        All.Select(s => s.Kind).Where(k => Wire(k) == text?.Trim().ToLowerInvariant()).Cast<ConnectorKind?>().FirstOrDefault()
        ?? throw new ConnectorSettingException("kind", $"kind must be one of {string.Join(", ", All.Select(s => Wire(s.Kind)))} (found \"{text}\")");

    public ConnectorSetting? Setting(string name) => Settings.FirstOrDefault(s => s.Name == name);

    /// <summary>Checks the values given for a new connector (<paramref name="current"/> null) or an edit
    /// of one: each given setting replaces the current one (null or "" clears an optional one), and
    /// the whitelist is replaced when given.</summary>
    /// <exception cref="ConnectorSettingException">A value is unknown, missing or malformed.</exception>
    public ConnectorValues Check(IReadOnlyDictionary<string, string?> given, IReadOnlyList<string>? allowed, ConnectorValues? current = null)
    {
        var settings = new SortedDictionary<string, string>(current?.Settings.ToDictionary() ?? [], StringComparer.Ordinal);
        var secrets = new SortedDictionary<string, string>(current?.Secrets.ToDictionary() ?? [], StringComparer.Ordinal);
        foreach (var (name, raw) in given)
        {
            var setting = Setting(name) ?? throw new ConnectorSettingException(name,
                $"a {Wire(Kind)} connector has no setting '{name}': its settings are {string.Join(", ", Settings.Select(s => s.Name).Append(AllowedKey ?? "").Where(n => n.Length > 0))}");
            var target = setting.IsSecret ? secrets : settings;
            var value = raw?.Trim();
            if (string.IsNullOrEmpty(value))
            {
                target.Remove(name);
                continue;
            }
            target[name] = CheckValue(setting, value);
        }
        foreach (var setting in Settings.Where(s => s.Required))
        {
            if (!(setting.IsSecret ? secrets : settings).ContainsKey(setting.Name))
            {
                throw new ConnectorSettingException(setting.Name, $"{setting.Name} is required for a {Wire(Kind)} connector: {setting.Help}");
            }
        }
        return new ConnectorValues(settings, secrets, allowed is null ? current?.Allowed ?? [] : CheckAllowed(allowed));
    }

    private static string CheckValue(ConnectorSetting setting, string value)
    {
        var ok = setting.Kind switch
        {
            SettingKind.HostPort => IsHostPort(value),
            SettingKind.Email => MailAddress.TryCreate(value, out var address) && address.Address == value,
            SettingKind.Url => Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "ws" or "wss",
            SettingKind.Id => value.All(char.IsAsciiDigit),
            SettingKind.Choice => setting.Choices!.Contains(value.ToLowerInvariant()),
            SettingKind.Model => ChannelAgent.ModelProblem(value) is null,
            _ => true,
        };
        if (!ok)
        {
            var expected = setting.Kind switch
            {
                SettingKind.HostPort => "host:port",
                SettingKind.Email => "an email address",
                SettingKind.Url => "an absolute http(s) or ws(s) URL",
                SettingKind.Id => "a number id",
                SettingKind.Model => "a model name or alias (letters, digits and - . _ : @ / [ ])",
                _ => "one of " + string.Join(", ", setting.Choices!),
            };
            throw new ConnectorSettingException(setting.Name, $"{setting.Name} must be {expected}, e.g. \"{setting.Example}\" (found \"{value}\")");
        }
        return setting.Kind == SettingKind.Choice ? value.ToLowerInvariant() : value;
    }

    private static bool IsHostPort(string value)
    {
        var colon = value.LastIndexOf(':');
        return colon > 0 && Uri.CheckHostName(value[..colon].Trim('[', ']')) != UriHostNameType.Unknown
            && int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536;
    }

    /// <summary>The whitelist as stored: "*" for anyone, else each entry in the one form it is compared in.</summary>
    private List<string> CheckAllowed(IReadOnlyList<string> entries)
    {
        if (AllowedKey is null)
        {
            if (entries.Count == 0)
            {
                return [];
            }
            throw new ConnectorSettingException("allowed", $"a {Wire(Kind)} connector has no sender whitelist yet: anyone in a server the bot is in may talk to it");
        }
        var allowed = new List<string>();
        foreach (var entry in entries.Select(e => e.Trim()).Where(e => e.Length > 0))
        {
            var normal = entry == "*" ? "*" : Kind switch
            {
                ConnectorKind.Telegram => TelegramSender(entry),
                ConnectorKind.Email => EmailSender(entry),
                _ => PhoneNumber(entry),
            };
            if (normal is null)
            {
                throw new ConnectorSettingException(AllowedKey, $"{AllowedKey} entries must be like {AllowedExample}, or \"*\" for anyone (found \"{entry}\")");
            }
            if (!allowed.Contains(normal))
            {
                allowed.Add(normal);
            }
        }
        return allowed;
    }

    /// <summary>A user id, or a username as "@name" in lower case (Telegram's usernames ignore case).</summary>
    private static string? TelegramSender(string entry) =>
        entry.All(char.IsAsciiDigit) ? entry
        : entry.TrimStart('@') is { Length: >= 4 and <= 32 } name && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? "@" + name.ToLowerInvariant()
        : null;

    /// <summary>An address, or a whole domain as "@example.com", in lower case.</summary>
    private static string? EmailSender(string entry)
    {
        var text = entry.ToLowerInvariant();
        if (text.Contains('@', StringComparison.Ordinal) && !text.StartsWith('@'))
        {
            return MailAddress.TryCreate(text, out var address) && address.Address == text ? text : null;
        }
        var domain = text.TrimStart('@');
        return domain.Contains('.', StringComparison.Ordinal) && Uri.CheckHostName(domain) == UriHostNameType.Dns ? "@" + domain : null;
    }

    /// <summary>The digits of an international number, as WhatsApp sends them ("15551234567").</summary>
    private static string? PhoneNumber(string entry)
    {
        var digits = new string(entry.Where(c => c is not ('+' or ' ' or '-' or '(' or ')')).ToArray());
        return digits.Length is >= 7 and <= 15 && digits.All(char.IsAsciiDigit) ? digits : null;
    }
}
