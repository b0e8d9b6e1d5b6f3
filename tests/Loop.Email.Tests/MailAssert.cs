namespace Loop.Email.Tests;

using Loop.Testing;
using MailKit;

public static class MailAssert
{
    public static string Unique(string name) => $"{name}-{Guid.NewGuid():N}@test.local";

    /// <summary>The \Seen flag of each mail in <paramref name="user"/>'s INBOX, by Message-ID.</summary>
    public static async Task<Dictionary<string, bool>> SeenAsync(MailServer server, MailUser user)
    {
        using var imap = await server.ConnectImapAsync(user);
        await imap.Inbox.OpenAsync(FolderAccess.ReadOnly);
        var seen = new Dictionary<string, bool>(StringComparer.Ordinal);
        if (imap.Inbox.Count > 0)
        {
            foreach (var summary in await imap.Inbox.FetchAsync(0, -1, MessageSummaryItems.Flags | MessageSummaryItems.Envelope))
            {
                seen[summary.Envelope!.MessageId!] = summary.Flags!.Value.HasFlag(MessageFlags.Seen);
            }
        }
        await imap.DisconnectAsync(quit: true);
        return seen;
    }

    public static Dictionary<string, string?> Settings(MailServer server, MailUser loop, string tls = "none", int? imapPort = null, int? smtpPort = null) => new()
    {
        ["imap"] = $"{MailServer.Host}:{imapPort ?? server.ImapPort}",
        ["smtp"] = $"{MailServer.Host}:{smtpPort ?? server.SmtpPort}",
        ["username"] = loop.Address,
        ["password"] = loop.Password,
        ["address"] = loop.Address,
        ["tls"] = tls,
    };
}
