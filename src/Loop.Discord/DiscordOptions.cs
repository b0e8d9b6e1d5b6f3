namespace Loop.Discord;

/// <summary>Where and as whom the bot connects: a Discord connector's settings and token.</summary>
/// <param name="AppId">The application id; when null it is taken from the gateway's READY.</param>
/// <param name="GuildId">When set, slash commands are registered in this guild only (they appear at once)
/// and <c>loop mcp --dir</c> creates a text channel here per directory.</param>
public sealed record DiscordOptions(string Token, string? AppId, string? GuildId, Uri ApiUrl, Uri GatewayUrl)
{
    public const string DefaultApiUrl = "https://discord.com/api/v10";
    public const string DefaultGatewayUrl = "wss://gateway.discord.gg";

    /// <summary>GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT (privileged: enable it in the portal).</summary>
    public const int Intents = (1 << 0) | (1 << 9) | (1 << 12) | (1 << 15);

    /// <summary>How long reconnects and re-identifies wait (shortened by tests).</summary>
    public DiscordTimings Timings { get; init; } = new();

    /// <summary>From a connector's checked settings (see <c>ConnectorSpec</c>) and opened credentials.</summary>
    public static DiscordOptions From(IReadOnlyDictionary<string, string> settings, IReadOnlyDictionary<string, string> secrets) => new(
        secrets["token"],
        settings.GetValueOrDefault("app_id"),
        settings.GetValueOrDefault("guild_id"),
        new Uri(settings.GetValueOrDefault("api_url") ?? DefaultApiUrl),
        new Uri(settings.GetValueOrDefault("gateway_url") ?? DefaultGatewayUrl));
}

/// <param name="ReconnectBase">First reconnect delay after a drop; doubles per failure up to <paramref name="ReconnectMax"/>.</param>
/// <param name="InvalidSessionMax">Discord asks for a random 1-5 s wait before identifying again after INVALID_SESSION.</param>
/// <param name="TypingRefresh">Discord shows "typing" for about 10 s per trigger.</param>
public sealed record DiscordTimings(
    TimeSpan? ReconnectBase = null, TimeSpan? ReconnectMax = null, TimeSpan? InvalidSessionMax = null, TimeSpan? TypingRefresh = null, TimeSpan? ServerErrorBackoff = null)
{
    public TimeSpan Reconnect => ReconnectBase ?? TimeSpan.FromSeconds(1);
    public TimeSpan ReconnectCap => ReconnectMax ?? TimeSpan.FromSeconds(60);
    public TimeSpan InvalidSession => InvalidSessionMax ?? TimeSpan.FromSeconds(5);
    public TimeSpan Typing => TypingRefresh ?? TimeSpan.FromSeconds(8);
    public TimeSpan ServerError => ServerErrorBackoff ?? TimeSpan.FromSeconds(1);
}
