namespace Loop.Domain.Connectors;

using Loop.Domain.Channels;

/// <summary>The chat platforms Loop speaks.</summary>
public enum ConnectorKind
{
    Discord,
    Telegram,
    Email,
    WhatsApp,
}

/// <summary>Where a connector was defined: through the API (kept in the store, editable there) or in
/// <c>config.json</c> (read at each start; edited in the file).</summary>
public enum ConnectorSource
{
    Api,
    Config,
}

/// <summary>
/// A chat platform account Loop listens on (a Telegram bot, a mailbox, a WhatsApp number, the Discord
/// bot): seed 002's "channel". Every conversation it opens is a Loop channel bound to it (the channel's
/// <c>Platform</c> is the connector's id). Credentials are not part of it: the store keeps them sealed
/// (<see cref="NewConnector.SealedSecrets"/>) and only the node holding the connection opens them.
/// </summary>
/// <param name="Settings">The settings that are not secret (an API URL, a host:port, a user name).</param>
/// <param name="Allowed">Who may talk to the agent through it: user ids or names, addresses or domains,
/// phone numbers; "*" for anyone. Empty: nobody.</param>
/// <param name="SecretNames">Which credentials are set, so a form can say so without showing them.</param>
public sealed record Connector(
    string Id,
    ConnectorKind Kind,
    string Name,
    bool Enabled,
    IReadOnlyDictionary<string, string> Settings,
    IReadOnlyList<string> Allowed,
    IReadOnlyList<string> SecretNames,
    ConnectorSource Source,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    ConnectorStatus Status)
{
    /// <summary>How the agents of the chats it opens run and show their work: its <c>mode</c>, <c>model</c>
    /// and <c>progress</c> settings (a kind that cannot show progress, as email, shows none).</summary>
    public ChannelAgent Agent => new(
        ChannelAgent.ParseMode(Settings.GetValueOrDefault(ConnectorSpec.ModeSetting)) ?? ChannelMode.Container,
        Settings.GetValueOrDefault(ConnectorSpec.ModelSetting),
        ConnectorSpec.For(Kind).Setting(ConnectorSpec.ProgressSetting) is null ? ChannelProgress.Off
            : ChannelAgent.ParseProgress(Settings.GetValueOrDefault(ConnectorSpec.ProgressSetting)) ?? ChannelProgress.Tools);
}

/// <summary>What the node holding a connector's connection last reported.</summary>
/// <param name="State">connecting, connected, failed or disabled.</param>
/// <param name="Node">The node holding the connection when it reported.</param>
public sealed record ConnectorStatus(string State, string? Error, DateTimeOffset? At, string? Node)
{
    public static readonly ConnectorStatus Connecting = new("connecting", null, null, null);
}

/// <summary>A connector as written to the store: its fields, and its credentials sealed
/// (<c>null</c> for a connector of the config file, whose credentials stay in the file).</summary>
public sealed record NewConnector(
    string Id,
    ConnectorKind Kind,
    string Name,
    bool Enabled,
    IReadOnlyDictionary<string, string> Settings,
    IReadOnlyList<string> Allowed,
    IReadOnlyList<string> SecretNames,
    string? SealedSecrets,
    ConnectorSource Source);

/// <summary>Who may do what through a connector. Owners may do everything (schedule, cancel, change
/// budgets, fork); members may chat and read. Identities are the platform's: Discord user and role ids,
/// Telegram user ids, email addresses (or <c>@domain</c>), WhatsApp numbers. With no owners, roles are
/// not configured: whoever the connector lets talk may do everything, as before roles existed.</summary>
public sealed record ChatRoles(IReadOnlyList<string> Owners, IReadOnlyList<string> Members)
{
    public static readonly ChatRoles None = new([], []);

    public bool Configured => Owners.Count > 0;

    /// <summary>The role of someone known by <paramref name="identities"/>; <paramref name="allowedToTalk"/> is
    /// what the connector's own whitelist says of them (Discord has none: anyone), which decides who is a
    /// member while no members are listed.</summary>
    public ChatRole RoleOf(IReadOnlyCollection<string> identities, bool allowedToTalk)
    {
        if (!Configured)
        {
            return allowedToTalk ? ChatRole.Owner : ChatRole.None;
        }
        if (identities.Any(Matches(Owners)))
        {
            return ChatRole.Owner;
        }
        var member = Members.Count == 0 ? allowedToTalk : Members.Contains("*") || identities.Any(Matches(Members));
        return member ? ChatRole.Member : ChatRole.None;
    }

    /// <summary>An entry matches an identity exactly (ignoring case: addresses), or an address by its <c>@domain</c>.</summary>
    private static Func<string, bool> Matches(IReadOnlyList<string> entries) => identity =>
        entries.Any(entry => string.Equals(entry, identity, StringComparison.OrdinalIgnoreCase)
            || (entry.StartsWith('@') && identity.EndsWith(entry, StringComparison.OrdinalIgnoreCase)));
}

public enum ChatRole
{
    None,
    Member,
    Owner,
}
