namespace Loop.Testing;

using System.Diagnostics;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using Loop.Config;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

/// <summary>A mailbox of a <see cref="MailServer"/>: the address is also the login.</summary>
public sealed record MailUser(string Address, string Password);

/// <summary>
/// A private mail service from Debian's packages (scripts/provision-test-env.sh installs them), in a
/// temp directory of its own and on free ports of 127.0.0.1: Dovecot serves IMAP (with IDLE) on
/// <see cref="ImapPort"/> (plaintext, STARTTLS offered) and <see cref="ImapsPort"/> (TLS), and Exim
/// takes SMTP submission on <see cref="SmtpPort"/> (plaintext, STARTTLS offered) and
/// <see cref="SmtpsPort"/> (TLS) and delivers to Dovecot's LMTP socket. Both ask for a login (AUTH
/// PLAIN or LOGIN, also without TLS) of a user made with <see cref="AddUserAsync"/>; SMTP takes mail
/// only for those users and relays nothing. TLS uses a self-signed <see cref="Certificate"/> made at
/// start: clients accept it with <see cref="AcceptsCertificate"/>. Under root both servers run as
/// the <c>dovecot</c> user; otherwise as the tests' own user.
/// Start, stop and kill are for one caller at a time; users and mail may be used from any thread.
/// </summary>
public sealed partial class MailServer : IAsyncDisposable
{
    public const string Host = "127.0.0.1";
    private const string ServerUserWhenRoot = "dovecot";
    private const string DovecotBinary = "/usr/sbin/dovecot";
    private const string EximBinary = "/usr/sbin/exim4";
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(30);
    private static readonly Lazy<Task<MailServer>> Shared = new(() => Task.Run(StartSharedAsync));

    private readonly string _root;
    private readonly bool _shared;
    private readonly ServerProcess _launcher;
    private readonly SemaphoreSlim _usersLock = new(1, 1);
    private Process? _watchdog;
    private Process? _dovecot;
    private Process? _exim;

    private MailServer(string root, bool shared, string runAs, X509Certificate2 certificate)
    {
        _root = root;
        _shared = shared;
        _launcher = new ServerProcess(runAs, LogPath);
        Certificate = certificate;
        ImapPort = FreePorts.Loopback();
        ImapsPort = FreePorts.Loopback(besides: [ImapPort]);
        SmtpPort = FreePorts.Loopback(besides: [ImapPort, ImapsPort]);
        SmtpsPort = FreePorts.Loopback(besides: [ImapPort, ImapsPort, SmtpPort]);
    }

    /// <summary>IMAP without TLS; STARTTLS is offered.</summary>
    public int ImapPort { get; }

    /// <summary>IMAP in TLS from the first byte.</summary>
    public int ImapsPort { get; }

    /// <summary>SMTP submission without TLS; STARTTLS is offered.</summary>
    public int SmtpPort { get; }

    /// <summary>SMTP submission in TLS from the first byte.</summary>
    public int SmtpsPort { get; }

    /// <summary>The self-signed certificate both servers present (for 127.0.0.1 and localhost).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>Both servers' output and Dovecot's log, across restarts; Exim's own log is beside it.</summary>
    public string LogPath => Path.Combine(_root, "mail.log");

    private string UsersPath => Path.Combine(_root, "users");
    private string DovecotDirectory => Path.Combine(_root, "dovecot");
    private string EximDirectory => Path.Combine(_root, "exim");

    /// <summary>The server for the whole test run, started by the first caller and stopped when the
    /// process exits. Add users of your own to it (unique addresses); to stop or crash a server, start
    /// one with <see cref="StartNewAsync"/> instead, as the shared one serves other tests meanwhile.</summary>
    public static Task<MailServer> SharedAsync() => Shared.Value;

    /// <summary>Starts a mail service that only the caller uses, with no users yet.</summary>
    public static Task<MailServer> StartNewAsync(CancellationToken ct = default) => StartNewAsync(shared: false, ct);

    private static async Task<MailServer> StartSharedAsync()
    {
        var server = await StartNewAsync(shared: true, CancellationToken.None);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.ShutdownAsync().GetAwaiter().GetResult();
        return server;
    }

    private static async Task<MailServer> StartNewAsync(bool shared, CancellationToken ct)
    {
        foreach (var program in new[] { DovecotBinary, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/lmtp", EximBinary })
        {
            if (!File.Exists(program))
            {
                throw new InvalidOperationException($"the test mail servers are not installed (no {program}): run `bash scripts/provision-test-env.sh`");
            }
        }
        var runAs = AgentUser.TestsRunAsRoot ? ServerUserWhenRoot : await ServerProcess.RunAsync("id", ["-un"], ct);
        var server = new MailServer(Directory.CreateTempSubdirectory("loop-mail-").FullName, shared, runAs, MakeCertificate(out var keyPem));
        try
        {
            await server.WriteFilesAsync(runAs, keyPem, ct);
            server._watchdog = StartWatchdog(server._root);
            await server.StartAsync(ct);
            return server;
        }
        catch
        {
            await server.ShutdownAsync();
            throw;
        }
    }

    private async Task WriteFilesAsync(string runAs, string keyPem, CancellationToken ct)
    {
        var uid = await ServerProcess.RunAsync("id", ["-u", runAs], ct);
        var gid = await ServerProcess.RunAsync("id", ["-g", runAs], ct);
        var group = await ServerProcess.RunAsync("id", ["-gn", runAs], ct);
        Directory.CreateDirectory(Path.Combine(DovecotDirectory, "run"));
        Directory.CreateDirectory(Path.Combine(DovecotDirectory, "state"));
        Directory.CreateDirectory(Path.Combine(DovecotDirectory, "mail"));
        Directory.CreateDirectory(Path.Combine(EximDirectory, "spool"));
        Directory.CreateDirectory(Path.Combine(_root, "tls"));
        await File.WriteAllTextAsync(Path.Combine(_root, "tls", "cert.pem"), Certificate.ExportCertificatePem() + "\n", ct);
        await File.WriteAllTextAsync(Path.Combine(_root, "tls", "key.pem"), keyPem + "\n", ct);
        await File.WriteAllTextAsync(UsersPath, "", ct);
        // Made here, so that it is the server user's: Dovecot opens it itself, besides the shell that
        // appends both servers' output to it.
        await File.WriteAllTextAsync(LogPath, "", ct);
        await File.WriteAllTextAsync(Path.Combine(_root, "dovecot.conf"), DovecotConfig(runAs, group, uid, gid), ct);
        await File.WriteAllTextAsync(Path.Combine(_root, "exim.conf"), EximConfig(runAs, group), ct);
        if (AgentUser.TestsRunAsRoot)
        {
            await ServerProcess.RunAsync("chown", ["-R", $"{runAs}:{group}", _root], ct);
        }
    }

    /// <summary>Nothing from /etc/dovecot: every path is inside the temp directory. The settings a
    /// non-root Dovecot needs: its own user for every service, and no chroot (which needs root).</summary>
    private string DovecotConfig(string user, string group, string uid, string gid)
    {
        var noChroot = string.Concat(
            new[] { "anvil", "ipc", "aggregator", "director", "old-stats", "imap-urlauth-login" }
                .Select(service => $"service {service} {{\n  chroot =\n}}\n"));
        return $$"""
            # Written by Loop.Testing.MailServer for one private instance.
            instance_name = {{Path.GetFileName(_root)}}
            base_dir = {{DovecotDirectory}}/run
            state_dir = {{DovecotDirectory}}/state
            log_path = {{LogPath}}
            listen = 127.0.0.1
            protocols = imap lmtp
            default_internal_user = {{user}}
            default_internal_group = {{group}}
            default_login_user = {{user}}
            first_valid_uid = {{uid}}
            first_valid_gid = {{gid}}
            ssl = yes
            ssl_cert = <{{_root}}/tls/cert.pem
            ssl_key = <{{_root}}/tls/key.pem
            ssl_min_protocol = TLSv1.2
            # Plaintext logins on loopback, as tests of a client's plaintext mode need them.
            disable_plaintext_auth = no
            auth_mechanisms = plain login
            passdb {
              driver = passwd-file
              args = scheme=PLAIN username_format=%u {{UsersPath}}
            }
            userdb {
              driver = static
              args = uid={{uid}} gid={{gid}} home={{DovecotDirectory}}/mail/%d/%n
            }
            mail_location = maildir:~/Maildir
            # IDLE hears of new mail through inotify at once; this is only the fallback.
            mailbox_idle_check_interval = 1 secs
            hostname = mail.test.local
            postmaster_address = postmaster@test.local
            service imap-login {
              chroot =
              inet_listener imap {
                port = {{ImapPort}}
              }
              inet_listener imaps {
                port = {{ImapsPort}}
                ssl = yes
              }
            }
            service lmtp {
              unix_listener lmtp {
                mode = 0600
              }
            }
            {{noChroot}}
            """;
    }

    /// <summary>Exim as a submission server that delivers to Dovecot's LMTP socket. exim_user names
    /// the user it runs as, which is what lets an unprivileged user start the daemon with its own -C
    /// file. Recipients must be users of this server (checked at RCPT), so a typo fails the send
    /// instead of bouncing later.</summary>
    private string EximConfig(string user, string group) => """
        # Written by Loop.Testing.MailServer for one private instance.
        exim_user = @USER@
        exim_group = @GROUP@
        primary_hostname = mail.test.local
        qualify_domain = test.local
        spool_directory = @EXIM@/spool
        log_file_path = @EXIM@/%slog
        pid_file_path = @EXIM@/exim.pid
        log_selector = -queue_run
        keep_environment =
        local_interfaces = 127.0.0.1
        disable_ipv6 = true
        daemon_smtp_ports = @SMTP@ : @SMTPS@
        tls_on_connect_ports = @SMTPS@
        tls_advertise_hosts = *
        tls_certificate = @ROOT@/tls/cert.pem
        tls_privatekey = @ROOT@/tls/key.pem
        auth_advertise_hosts = *
        # No DNS or ident look-ups: the tests have no resolver to wait for.
        host_lookup =
        rfc1413_hosts =
        deliver_drop_privilege = true
        smtp_accept_max = 100
        # Every message is delivered at once, however many a connection sends.
        smtp_accept_queue_per_connection = 0
        acl_smtp_rcpt = acl_rcpt

        begin acl
        acl_rcpt:
          deny    message = authentication required
                  !authenticated = *
          require message = no mailbox for $local_part@$domain here
                  verify = recipient
          accept

        begin routers
        mailbox:
          driver = accept
          condition = ${lookup{$local_part@$domain}lsearch{@USERS@}{yes}{no}}
          transport = dovecot_lmtp

        begin transports
        dovecot_lmtp:
          driver = lmtp
          socket = @DOVECOT@/run/lmtp

        begin retry
        # Dovecot may be down for a moment (a test stops it): try again each second.
        *  *  F,1h,1s

        # The users file holds "address:password"; an unknown address looks up as "", which no
        # password (never empty) equals.
        begin authenticators
        plain:
          driver = plaintext
          public_name = PLAIN
          server_prompts = :
          server_condition = ${if and{{!eq{$auth3}{}}{eq{$auth3}{${lookup{$auth2}lsearch{@USERS@}}}}}}
          server_set_id = $auth2
        login:
          driver = plaintext
          public_name = LOGIN
          server_prompts = <| Username: | Password:
          server_condition = ${if and{{!eq{$auth2}{}}{eq{$auth2}{${lookup{$auth1}lsearch{@USERS@}}}}}}
          server_set_id = $auth1

        """
        // Placeholders, not interpolation: Exim's own syntax is made of braces.
        .Replace("@USER@", user).Replace("@GROUP@", group)
        .Replace("@SMTP@", SmtpPort.ToString(CultureInfo.InvariantCulture)).Replace("@SMTPS@", SmtpsPort.ToString(CultureInfo.InvariantCulture))
        .Replace("@USERS@", UsersPath).Replace("@EXIM@", EximDirectory).Replace("@DOVECOT@", DovecotDirectory).Replace("@ROOT@", _root);

    /// <summary>Starts both servers on their ports and directory, again after <see cref="StopAsync"/>
    /// or <see cref="KillAsync"/> (mailboxes and Exim's queue are kept), and returns once both greet.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        if (_dovecot is { HasExited: false } || _exim is { HasExited: false })
        {
            throw new InvalidOperationException("the mail servers are running already");
        }
        _dovecot?.Dispose();
        _exim?.Dispose();
        // Ours have exited: a pid file left by a kill might name an unrelated process by now, which
        // Dovecot would take for itself running already.
        File.Delete(Path.Combine(DovecotDirectory, "run", "master.pid"));
        _dovecot = _launcher.Start(_root, DovecotBinary, "-F", "-c", Path.Combine(_root, "dovecot.conf"));
        // -bdf: the daemon in the foreground; -q1s: a deferred delivery is retried within a second.
        _exim = _launcher.Start(_root, EximBinary, "-C", Path.Combine(_root, "exim.conf"), "-bdf", "-q1s");
        try
        {
            await WaitForGreetingAsync("dovecot", _dovecot, ImapPort, "* OK", ct);
            await WaitForGreetingAsync("exim", _exim, SmtpPort, "220 ", ct);
        }
        catch
        {
            // Servers that never came up must not hold the ports for the next try.
            await KillServersAsync(CancellationToken.None);
            throw;
        }
    }

    private async Task WaitForGreetingAsync(string name, Process server, int port, string greeting, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + StartDeadline;
        while (true)
        {
            if (server.HasExited)
            {
                throw Failure($"{name} exited with {server.ExitCode}");
            }
            string? line = null;
            try
            {
                using var client = new TcpClient();
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
                attempt.CancelAfter(TimeSpan.FromSeconds(5));
                await client.ConnectAsync(Host, port, attempt.Token);
                using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
                line = await reader.ReadLineAsync(attempt.Token);
            }
            catch (Exception error) when ((error is SocketException or IOException or OperationCanceledException) && !ct.IsCancellationRequested)
            {
                // Not listening yet.
            }
            if (line?.StartsWith(greeting, StringComparison.Ordinal) == true)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw Failure($"nothing greeted with \"{greeting}\" on port {port} within {StartDeadline.TotalSeconds:0} s (last answer: {line ?? "none"})");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), ct);
        }
    }

    /// <summary>Stops both servers (SIGTERM: sessions end, mail accepted so far is kept);
    /// <see cref="StartAsync"/> starts them again.</summary>
    public async Task StopAsync(CancellationToken ct = default)
    {
        ThrowIfShared();
        await StopServersAsync(ct);
    }

    private async Task StopServersAsync(CancellationToken ct)
    {
        foreach (var server in new[] { _exim, _dovecot })
        {
            if (server is { HasExited: false })
            {
                ServerProcess.Signal(server.Id, ServerProcess.SIGTERM);
            }
        }
        foreach (var server in new[] { _exim, _dovecot })
        {
            if (server is not null)
            {
                await server.WaitForExitAsync(ct).WaitAsync(StopDeadline, ct);
            }
        }
    }

    /// <summary>Crashes both servers: SIGKILL to each and every process it started, so clients lose
    /// their connections mid-command. Returns once all are gone.</summary>
    public async Task KillAsync(CancellationToken ct = default)
    {
        ThrowIfShared();
        await KillServersAsync(ct);
    }

    private async Task KillServersAsync(CancellationToken ct)
    {
        foreach (var server in new[] { _exim, _dovecot })
        {
            if (server is not null)
            {
                await ServerProcess.KillTreeAsync(server, ct);
            }
        }
    }

    /// <summary>Makes a mailbox (its INBOX exists from the first login or delivery) with a login of
    /// <paramref name="address"/> and <paramref name="password"/>, else a random one. Both servers
    /// read the users file afresh, so the user works at once, without a restart.</summary>
    public async Task<MailUser> AddUserAsync(string address, string? password = null, CancellationToken ct = default)
    {
        address = address.ToLowerInvariant();
        if (!AddressPattern().IsMatch(address))
        {
            throw new ArgumentException($"\"{address}\" is not an address this fixture takes (local@domain, letters, digits, . _ + -)", nameof(address));
        }
        password ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        // Both file formats end a key at ':' and read '{', '"' and blanks specially.
        if (!PasswordPattern().IsMatch(password))
        {
            throw new ArgumentException("a password here is printable ASCII without blanks, ':', '\"', '\\', '{' or '}'", nameof(password));
        }
        await _usersLock.WaitAsync(ct);
        try
        {
            if ((await File.ReadAllLinesAsync(UsersPath, ct)).Any(line => line.StartsWith(address + ":", StringComparison.Ordinal)))
            {
                throw new InvalidOperationException($"{address} is a user of this mail server already");
            }
            // Appended, so the file always grows: Dovecot notices a change by its size and time.
            await File.AppendAllTextAsync(UsersPath, $"{address}:{password}\n", ct);
        }
        finally
        {
            _usersLock.Release();
        }
        return new MailUser(address, password);
    }

    /// <summary>For <c>ServerCertificateValidationCallback</c>: true for this server's own certificate
    /// only, as a client that pins it would decide.</summary>
    public bool AcceptsCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        certificate is not null && certificate.GetCertHashString(HashAlgorithmName.SHA256) == Certificate.GetCertHashString(HashAlgorithmName.SHA256);

    /// <summary>An IMAP client logged in as <paramref name="user"/>: <see cref="SecureSocketOptions.SslOnConnect"/>
    /// goes to <see cref="ImapsPort"/>, anything else to <see cref="ImapPort"/>. It trusts this server's
    /// certificate.</summary>
    public async Task<ImapClient> ConnectImapAsync(MailUser user, SecureSocketOptions security = SecureSocketOptions.None, CancellationToken ct = default)
    {
        var client = new ImapClient { ServerCertificateValidationCallback = AcceptsCertificate, CheckCertificateRevocation = false };
        try
        {
            await client.ConnectAsync(Host, security == SecureSocketOptions.SslOnConnect ? ImapsPort : ImapPort, security, ct);
            await client.AuthenticateAsync(user.Address, user.Password, ct);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>An SMTP client logged in as <paramref name="user"/>, on <see cref="SmtpsPort"/> for
    /// <see cref="SecureSocketOptions.SslOnConnect"/>, else on <see cref="SmtpPort"/>.</summary>
    public async Task<SmtpClient> ConnectSmtpAsync(MailUser user, SecureSocketOptions security = SecureSocketOptions.None, CancellationToken ct = default)
    {
        var client = new SmtpClient { ServerCertificateValidationCallback = AcceptsCertificate, CheckCertificateRevocation = false };
        try
        {
            await client.ConnectAsync(Host, security == SecureSocketOptions.SslOnConnect ? SmtpsPort : SmtpPort, security, ct);
            await client.AuthenticateAsync(user.Address, user.Password, ct);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Submits <paramref name="message"/> as <paramref name="from"/> (the login and the
    /// envelope sender) to its To, Cc and Bcc. Delivery follows within moments: wait for it with
    /// <see cref="WaitForMessagesAsync"/>.</summary>
    public async Task SendAsync(MailUser from, MimeMessage message, CancellationToken ct = default)
    {
        var recipients = message.To.Mailboxes.Concat(message.Cc.Mailboxes).Concat(message.Bcc.Mailboxes).ToList();
        using var smtp = await ConnectSmtpAsync(from, ct: ct);
        await smtp.SendAsync(message, new MailboxAddress(null, from.Address), recipients, ct);
        await smtp.DisconnectAsync(quit: true, ct);
    }

    /// <summary>Submits a message given as its MIME text (headers, blank line, body).</summary>
    public async Task SendAsync(MailUser from, string mime, CancellationToken ct = default)
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(mime));
        await SendAsync(from, await MimeMessage.LoadAsync(stream, ct), ct);
    }

    /// <summary>Submits a plain-text message and returns it (with its Message-Id).</summary>
    public async Task<MimeMessage> SendAsync(MailUser from, string to, string subject, string text, CancellationToken ct = default)
    {
        var message = new MimeMessage { Subject = subject, Body = new TextPart("plain") { Text = text } };
        message.From.Add(MailboxAddress.Parse(from.Address));
        message.To.Add(MailboxAddress.Parse(to));
        await SendAsync(from, message, ct);
        return message;
    }

    /// <summary>Every message in <paramref name="mailbox"/> of <paramref name="user"/>, oldest first.</summary>
    public async Task<IReadOnlyList<MimeMessage>> MessagesAsync(MailUser user, string mailbox = "INBOX", CancellationToken ct = default)
    {
        using var imap = await ConnectImapAsync(user, ct: ct);
        var folder = await OpenAsync(imap, mailbox, ct);
        var messages = await ReadAllAsync(folder, ct);
        await imap.DisconnectAsync(quit: true, ct);
        return messages;
    }

    /// <summary>Waits until <paramref name="mailbox"/> of <paramref name="user"/> holds at least
    /// <paramref name="count"/> messages and returns them all, oldest first. It waits in IMAP IDLE,
    /// woken by the server when mail arrives; after <paramref name="timeout"/> (30 s unless given) it
    /// throws a <see cref="TimeoutException"/> that says how many came.</summary>
    public async Task<IReadOnlyList<MimeMessage>> WaitForMessagesAsync(MailUser user, int count, TimeSpan? timeout = null, string mailbox = "INBOX", CancellationToken ct = default)
    {
        var wait = timeout ?? DefaultWait;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(wait);
        using var imap = await ConnectImapAsync(user, ct: deadline.Token);
        var folder = await OpenAsync(imap, mailbox, deadline.Token);
        try
        {
            while (folder.Count < count)
            {
                // Dovecot reports mail that came before IDLE began as soon as IDLE begins: none is missed.
                using var arrived = new CancellationTokenSource();
                void OnCountChanged(object? sender, EventArgs e) => arrived.Cancel();
                folder.CountChanged += OnCountChanged;
                try
                {
                    await imap.IdleAsync(arrived.Token, deadline.Token);
                }
                finally
                {
                    folder.CountChanged -= OnCountChanged;
                }
            }
            var messages = await ReadAllAsync(folder, deadline.Token);
            await imap.DisconnectAsync(quit: true, deadline.Token);
            return messages;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{user.Address}'s {mailbox} held {folder.Count} of {count} messages after {wait.TotalSeconds:0.#} s");
        }
    }

    private static async Task<IMailFolder> OpenAsync(ImapClient imap, string mailbox, CancellationToken ct)
    {
        var folder = string.Equals(mailbox, "INBOX", StringComparison.OrdinalIgnoreCase) ? imap.Inbox : await imap.GetFolderAsync(mailbox, ct);
        await folder.OpenAsync(FolderAccess.ReadOnly, ct);
        return folder;
    }

    private static async Task<IReadOnlyList<MimeMessage>> ReadAllAsync(IMailFolder folder, CancellationToken ct)
    {
        var messages = new List<MimeMessage>(folder.Count);
        for (var index = 0; index < folder.Count; index++)
        {
            messages.Add(await folder.GetMessageAsync(index, ct));
        }
        return messages;
    }

    /// <summary>Ends the servers and deletes the directory. The shared server is left running: it is
    /// stopped when the process exits.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_shared)
        {
            await ShutdownAsync();
        }
    }

    private async Task ShutdownAsync()
    {
        // Killed, not stopped: the mail goes with the directory anyway, and Dovecot's orderly stop
        // takes about a second.
        await KillServersAsync(CancellationToken.None);
        _dovecot?.Dispose();
        _dovecot = null;
        _exim?.Dispose();
        _exim = null;
        if (_watchdog is { } watchdog)
        {
            // Its stdin closing tells it to delete the directory, as it would after a crash of this process.
            watchdog.StandardInput.Close();
            await watchdog.WaitForExitAsync();
            watchdog.Dispose();
            _watchdog = null;
        }
        else if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
        Certificate.Dispose();
    }

    private void ThrowIfShared()
    {
        if (_shared)
        {
            throw new InvalidOperationException("the shared mail server serves other tests: stop or crash one from MailServer.StartNewAsync");
        }
    }

    /// <summary>A shell that waits for its stdin, which only this process holds, to close, then stops
    /// both servers and deletes <paramref name="root"/>: a test run that is killed or crashes leaves no
    /// server behind either.</summary>
    private static Process StartWatchdog(string root)
    {
        var start = new ProcessStartInfo("sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("-c");
        // A pid file left by a kill may name another process by now: the name guards it.
        start.ArgumentList.Add("""
            read -r _
            for server in dovecot/run/master.pid:dovecot exim/exim.pid:exim4; do
              pid=$(head -n 1 "$0/${server%%:*}" 2>/dev/null)
              if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${server##*:}" ]; then
                kill -TERM "$pid"
                for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
              fi
            done
            rm -rf "$0"
            """);
        start.ArgumentList.Add(root);
        return Process.Start(start) ?? throw new InvalidOperationException("cannot start sh");
    }

    /// <summary>A self-signed ECDSA certificate for 127.0.0.1 and localhost, and its key as PKCS#8 PEM,
    /// which both OpenSSL (Dovecot) and GnuTLS (Exim) read.</summary>
    private static X509Certificate2 MakeCertificate(out string keyPem)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        keyPem = key.ExportPkcs8PrivateKeyPem();
        // The public part only: clients compare against it, and nothing here needs the key again.
        return X509CertificateLoader.LoadCertificate(certificate.RawData);
    }

    private Exception Failure(string message)
    {
        var logs = new[] { LogPath, Path.Combine(EximDirectory, "paniclog"), Path.Combine(EximDirectory, "mainlog") }
            .Where(File.Exists)
            .Select(path => $"The end of {path}:\n{string.Join('\n', File.ReadLines(path).TakeLast(30))}");
        return new InvalidOperationException($"{message}. {string.Join("\n", logs)}");
    }

    [GeneratedRegex(@"^[a-z0-9._+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*$")]
    private static partial Regex AddressPattern();

    [GeneratedRegex(@"^[!#-9;-z|~]+$")]
    private static partial Regex PasswordPattern();
}
