namespace Loop.Mcp.Tests;

using System.Diagnostics;
using Loop.Testing;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Smtp;
using MailKit.Security;
using Xunit.Abstractions;

/// <summary>The mail servers the email connector's tests will run against (Loop.Testing's
/// MailServer): mail sent over SMTP is read back over IMAP, IDLE wakes a waiting client, and TLS
/// works with the fixture's self-signed certificate only when the client is told to trust it.
/// Here because this project is the lightest that references Loop.Testing.</summary>
public sealed class MailServerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Mail_from_alice_over_smtp_is_read_by_loop_over_imap()
    {
        var clock = Stopwatch.StartNew();
        await using var server = await MailServer.StartNewAsync();
        // Printed, as a time on a shared machine is too noisy to assert.
        output.WriteLine($"StartNewAsync returned after {clock.ElapsedMilliseconds} ms");
        var loop = await server.AddUserAsync("loop@test.local", "loop-password");
        var alice = await server.AddUserAsync("alice@test.local");

        var sent = await server.SendAsync(alice, loop.Address, "Hello Loop", "What does this repo do?");
        var inbox = await server.WaitForMessagesAsync(loop, 1);

        var received = Assert.Single(inbox);
        Assert.Equal(sent.MessageId, received.MessageId);
        Assert.Equal("Hello Loop", received.Subject);
        Assert.Equal("alice@test.local", Assert.Single(received.From.Mailboxes).Address);
        Assert.Equal("What does this repo do?", received.TextBody?.Trim());
        Assert.Empty(await server.MessagesAsync(alice));
    }

    [Fact]
    public async Task Smtp_refuses_a_wrong_password_and_an_unknown_recipient()
    {
        var server = await MailServer.SharedAsync();
        var alice = await server.AddUserAsync(Unique("alice"));

        await Assert.ThrowsAsync<AuthenticationException>(() => server.ConnectSmtpAsync(alice with { Password = "not-" + alice.Password }));
        var refused = await Assert.ThrowsAsync<SmtpCommandException>(() => server.SendAsync(alice, "nobody@test.local", "lost", "no such mailbox"));
        Assert.Equal(SmtpErrorCode.RecipientNotAccepted, refused.ErrorCode);
    }

    [Fact]
    public async Task Idle_tells_a_waiting_client_of_new_mail()
    {
        var server = await MailServer.SharedAsync();
        var loop = await server.AddUserAsync(Unique("loop"));
        var alice = await server.AddUserAsync(Unique("alice"));
        using var overall = new CancellationTokenSource(Patience);
        using var imap = await server.ConnectImapAsync(loop, ct: overall.Token);
        Assert.True(imap.Capabilities.HasFlag(ImapCapabilities.Idle));
        await imap.Inbox.OpenAsync(FolderAccess.ReadOnly, overall.Token);
        Assert.Equal(0, imap.Inbox.Count);
        using var done = new CancellationTokenSource();
        imap.Inbox.CountChanged += (_, _) => done.Cancel();

        var idle = imap.IdleAsync(done.Token, overall.Token);
        // Sent once the client idles, so that only IDLE can tell it.
        while (!imap.IsIdle && !idle.IsCompleted)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), overall.Token);
        }
        await server.SendAsync(alice, loop.Address, "wake up", "new mail");
        await idle;

        Assert.Equal(1, imap.Inbox.Count);
        Assert.Equal("wake up", (await imap.Inbox.GetMessageAsync(0, overall.Token)).Subject);
    }

    [Fact]
    public async Task Tls_works_with_the_self_signed_certificate_once_it_is_trusted()
    {
        var server = await MailServer.SharedAsync();
        var loop = await server.AddUserAsync(Unique("loop"));
        using var overall = new CancellationTokenSource(Patience);

        // A client that checks certificates as usual refuses the fixture's.
        using (var strictImap = new ImapClient())
        {
            await Assert.ThrowsAsync<SslHandshakeException>(() => strictImap.ConnectAsync(MailServer.Host, server.ImapsPort, SecureSocketOptions.SslOnConnect, overall.Token));
        }
        using (var strictSmtp = new SmtpClient())
        {
            await Assert.ThrowsAsync<SslHandshakeException>(() => strictSmtp.ConnectAsync(MailServer.Host, server.SmtpPort, SecureSocketOptions.StartTls, overall.Token));
        }

        // Sent over SMTP in TLS from the first byte, read over IMAP with STARTTLS and with TLS.
        using (var smtp = await server.ConnectSmtpAsync(loop, SecureSocketOptions.SslOnConnect, overall.Token))
        {
            Assert.True(smtp.IsSecure);
            var message = new MimeKit.MimeMessage { Subject = "over tls", Body = new MimeKit.TextPart("plain") { Text = "sealed" } };
            message.From.Add(MimeKit.MailboxAddress.Parse(loop.Address));
            message.To.Add(MimeKit.MailboxAddress.Parse(loop.Address));
            await smtp.SendAsync(message, overall.Token);
        }
        await server.WaitForMessagesAsync(loop, 1, ct: overall.Token);
        foreach (var security in new[] { SecureSocketOptions.StartTls, SecureSocketOptions.SslOnConnect })
        {
            using var imap = await server.ConnectImapAsync(loop, security, overall.Token);
            Assert.True(imap.IsSecure);
            await imap.Inbox.OpenAsync(FolderAccess.ReadOnly, overall.Token);
            Assert.Equal("over tls", (await imap.Inbox.GetMessageAsync(0, overall.Token)).Subject);
        }
    }

    [Fact]
    public async Task Mail_is_kept_across_a_stop_and_a_kill()
    {
        await using var server = await MailServer.StartNewAsync();
        var loop = await server.AddUserAsync("loop@test.local");
        await server.SendAsync(loop, loop.Address, "before the stop", "1");
        await server.WaitForMessagesAsync(loop, 1);

        await server.StopAsync();
        await server.StartAsync();
        await server.SendAsync(loop, loop.Address, "before the kill", "2");
        await server.WaitForMessagesAsync(loop, 2);
        await server.KillAsync();
        await server.StartAsync();

        Assert.Equal(["before the stop", "before the kill"], (await server.MessagesAsync(loop)).Select(m => m.Subject));
    }

    private static string Unique(string name) => $"{name}-{Guid.NewGuid():N}@test.local";
}
