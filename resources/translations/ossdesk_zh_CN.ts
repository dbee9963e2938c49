<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AccountsDialog</name>
    <message>
        <source>OSS accounts</source>
        <translation>OSS 账号</translation>
    </message>
    <message>
        <source>New account</source>
        <translation>新建账号</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>删除</translation>
    </message>
    <message>
        <source>e.g. work</source>
        <translation>例如：工作</translation>
    </message>
    <message>
        <source>e.g. cn-hangzhou (read from the endpoint if empty)</source>
        <translation>例如 cn-hangzhou（留空则从访问域名读取）</translation>
    </message>
    <message>
        <source>e.g. my-photos</source>
        <translation>例如 my-photos</translation>
    </message>
    <message>
        <source>top level of the bucket</source>
        <translation>Bucket 根目录</translation>
    </message>
    <message>
        <source>V4 (recommended)</source>
        <translation>V4（推荐）</translation>
    </message>
    <message>
        <source>V1 (older servers)</source>
        <translation>V1（旧版服务器）</translation>
    </message>
    <message>
        <source>only for temporary (STS) credentials</source>
        <translation>仅用于临时（STS）凭证</translation>
    </message>
    <message>
        <source>Account name:</source>
        <translation>账号名称：</translation>
    </message>
    <message>
        <source>Endpoint:</source>
        <translation>访问域名（Endpoint）：</translation>
    </message>
    <message>
        <source>Region:</source>
        <translation>地域：</translation>
    </message>
    <message>
        <source>Bucket:</source>
        <translation>Bucket：</translation>
    </message>
    <message>
        <source>Default folder:</source>
        <translation>默认文件夹：</translation>
    </message>
    <message>
        <source>Signature:</source>
        <translation>签名版本：</translation>
    </message>
    <message>
        <source>AccessKey ID:</source>
        <translation>AccessKey ID：</translation>
    </message>
    <message>
        <source>AccessKey secret:</source>
        <translation>AccessKey Secret：</translation>
    </message>
    <message>
        <source>STS token:</source>
        <translation>STS 令牌：</translation>
    </message>
    <message>
        <source>Keep the secret for this session only</source>
        <translation>仅在本次运行期间保留密钥</translation>
    </message>
    <message>
        <source>Test connection</source>
        <translation>测试连接</translation>
    </message>
    <message>
        <source>Save</source>
        <translation>保存</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Checking the system keyring…</source>
        <translation>正在检查系统钥匙串…</translation>
    </message>
    <message>
        <source>The secret and the STS token are kept in the system keyring, never in a file.</source>
        <translation>AccessKey Secret 和 STS 令牌保存在系统钥匙串中，绝不写入文件。</translation>
    </message>
    <message>
        <source>No working system keyring was found, so the secret cannot be saved. ossdesk can keep it in memory for this session only: you will enter it again after restarting. It is never written to a file.</source>
        <translation>未找到可用的系统钥匙串，因此无法保存密钥。ossdesk 可以仅在本次运行期间将其保留在内存中：重启后需要重新输入。密钥绝不会写入文件。</translation>
    </message>
    <message>
        <source>Could not read the accounts: %1</source>
        <translation>无法读取账号：%1</translation>
    </message>
    <message>
        <source>kept in the keyring; type a new one to replace it</source>
        <translation>已保存在钥匙串中；输入新的密钥即可替换</translation>
    </message>
    <message>
        <source>required</source>
        <translation>必填</translation>
    </message>
    <message>
        <source>Give the account a name.</source>
        <translation>请为账号命名。</translation>
    </message>
    <message>
        <source>Enter the endpoint or the region of the bucket.</source>
        <translation>请输入 Bucket 的访问域名或地域。</translation>
    </message>
    <message>
        <source>Enter the bucket name.</source>
        <translation>请输入 Bucket 名称。</translation>
    </message>
    <message>
        <source>Enter the AccessKey ID.</source>
        <translation>请输入 AccessKey ID。</translation>
    </message>
    <message>
        <source>Enter the AccessKey secret.</source>
        <translation>请输入 AccessKey Secret。</translation>
    </message>
    <message>
        <source>Enter the AccessKey secret together with the STS token.</source>
        <translation>请同时输入 AccessKey Secret 和 STS 令牌。</translation>
    </message>
    <message>
        <source>Connecting…</source>
        <translation>正在连接…</translation>
    </message>
    <message>
        <source>✔ Connected: bucket “%1” can be reached with these credentials.</source>
        <translation>✔ 连接成功：可以使用这些凭证访问 Bucket “%1”。</translation>
    </message>
    <message>
        <source>✘ %1</source>
        <translation>✘ %1</translation>
    </message>
    <message>
        <source>Saved. The secret is kept for this session only.</source>
        <translation>已保存。密钥仅在本次运行期间保留。</translation>
    </message>
    <message>
        <source>Saved. The secret is in the system keyring, not in any file.</source>
        <translation>已保存。密钥存放在系统钥匙串中，未写入任何文件。</translation>
    </message>
    <message>
        <source>Save account</source>
        <translation>保存账号</translation>
    </message>
    <message>
        <source>The last connection test with these settings failed. Files uploaded with this account will fail the same way. Save anyway?</source>
        <translation>使用这些设置的上一次连接测试失败了。用此账号上传的文件也会同样失败。仍要保存吗？</translation>
    </message>
    <message>
        <source>The system keyring does not work, so the secret was not saved. Tick “Keep the secret for this session only”, enter the secret again and save.</source>
        <translation>系统钥匙串不可用，密钥未保存。请勾选“仅在本次运行期间保留密钥”，重新输入密钥后保存。</translation>
    </message>
    <message>
        <source>Not saved. %1</source>
        <translation>未保存。%1</translation>
    </message>
    <message>
        <source>Remove account</source>
        <translation>删除账号</translation>
    </message>
    <message>
        <source>Remove the account “%1” and its secret from the keyring? Files already uploaded stay in the bucket.</source>
        <translation>要删除账号“%1”并从钥匙串中删除其密钥吗？已上传的文件仍保留在 Bucket 中。</translation>
    </message>
    <message>
        <source>Account removed.</source>
        <translation>账号已删除。</translation>
    </message>
</context>
<context>
    <name>Controller</name>
    <message>
        <source>Another program is using port %1, where the local sandbox usually runs. The sandbox now runs on port %2 and keeps that port from now on.</source>
        <translation>另一个程序正在使用本地沙盒通常所用的端口 %1。沙盒现在运行在端口 %2 上，今后将一直使用该端口。</translation>
    </message>
    <message>
        <source>Uploads queued to the sandbox continue there.</source>
        <translation>排队上传到沙盒的文件会在那里继续上传。</translation>
    </message>
    <message>
        <source>Uploads queued to the sandbox before are moved to the new port the next time ossdesk is started with --sandbox.</source>
        <translation>之前排队上传到沙盒的文件会在下次以 --sandbox 启动 ossdesk 时改用新端口。</translation>
    </message>
    <message>
        <source>Sandbox</source>
        <translation>本地沙盒</translation>
    </message>
    <message>
        <source>The local sandbox could not start: %1</source>
        <translation>本地沙盒无法启动：%1</translation>
    </message>
</context>
<context>
    <name>DropFlow</name>
    <message>
        <source>Choose an account and a bucket before adding files.</source>
        <translation>添加文件前，请先选择账号和 Bucket。</translation>
    </message>
    <message>
        <source>Looking for files…</source>
        <translation>正在查找文件…</translation>
    </message>
    <message>
        <source>The drop was cancelled.</source>
        <translation>已取消本次添加。</translation>
    </message>
    <message>
        <source>%1 and %2 both go to %3</source>
        <translation>%1 和 %2 都要上传到 %3</translation>
    </message>
    <message>
        <source>Two files for one name</source>
        <translation>两个文件对应同一个名称</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) would go to a name in the bucket that another file already goes to.</source>
        <translation>
            <numerusform>有 %n 个文件要上传到的名称已被另一个文件占用。</numerusform>
        </translation>
    </message>
    <message>
        <source>One object can hold only one of them. Skip the later ones: the first file for each name is uploaded and the others are not added. Cancel the drop: nothing more of it is added.</source>
        <translation>一个对象只能保存其中一个文件。跳过后来的：每个名称只上传第一个文件，其余文件不添加。取消本次添加：本次添加的其余内容都不再添加。</translation>
    </message>
    <message>
        <source>Skip the later ones</source>
        <translation>跳过后来的</translation>
    </message>
    <message>
        <source>Could not check which files already exist (%1); they are uploaded and replace what is there.</source>
        <translation>无法检查哪些文件已存在（%1）；这些文件将照常上传并替换已有的对象。</translation>
    </message>
    <message>
        <source>Files already in the bucket</source>
        <translation>文件已在存储空间中</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) of what you added already exist in the bucket.</source>
        <translation>
            <numerusform>您添加的文件中有 %n 个已存在于存储空间中。</numerusform>
        </translation>
    </message>
    <message>
        <source>Skip identical: a file whose object has the same size and CRC-64 is not sent again; a file that differs replaces its object. Overwrite all: every file is sent. Your choice applies to the rest of this drop.</source>
        <translation>跳过相同文件：对象大小和 CRC-64 都相同的文件不再上传；内容不同的文件会替换其对象。全部覆盖：所有文件都上传。您的选择适用于本次拖放的其余文件。</translation>
    </message>
    <message>
        <source>Skip identical</source>
        <translation>跳过相同文件</translation>
    </message>
    <message>
        <source>Overwrite all</source>
        <translation>全部覆盖</translation>
    </message>
    <message>
        <source>Cancel the drop</source>
        <translation>取消本次添加</translation>
    </message>
    <message numerus="yes">
        <source>Added %n file(s)</source>
        <translation>
            <numerusform>已添加 %n 个文件</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n item(s) skipped</source>
        <translation>
            <numerusform>已跳过 %n 项</numerusform>
        </translation>
    </message>
    <message>
        <source>%1 was in the queue: it continues there</source>
        <translation>%1 已在队列中：在原来的位置继续上传</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) were in the queue: they continue there</source>
        <translation>
            <numerusform>%n 个文件已在队列中：在原来的位置继续上传</numerusform>
        </translation>
    </message>
    <message>
        <source>%1 is in the queue: left as it is</source>
        <translation>%1 已在队列中：保持不变</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) are in the queue: left as they are</source>
        <translation>
            <numerusform>%n 个文件已在队列中：保持不变</numerusform>
        </translation>
    </message>
    <message>
        <source>Show what was not added and why</source>
        <translation>查看哪些项目未添加及原因</translation>
    </message>
    <message>
        <source>link loop (a link to a folder that contains it)</source>
        <translation>链接循环（指向包含它自身的文件夹的链接）</translation>
    </message>
    <message>
        <source>cannot be read</source>
        <translation>无法读取</translation>
    </message>
    <message>
        <source>already added</source>
        <translation>已添加过</translation>
    </message>
    <message>
        <source>no longer exists</source>
        <translation>已不存在</translation>
    </message>
    <message>
        <source>not a regular file</source>
        <translation>不是普通文件</translation>
    </message>
    <message>
        <source>the name is not valid UTF-8; rename it to upload it</source>
        <translation>名称不是有效的 UTF-8；请重命名后再上传</translation>
    </message>
    <message>
        <source>not added</source>
        <translation>未添加</translation>
    </message>
    <message>
        <source>Items not added</source>
        <translation>未添加的项目</translation>
    </message>
    <message numerus="yes">
        <source>%n item(s) were not added to the queue.</source>
        <translation>
            <numerusform>有 %n 项未添加到队列。</numerusform>
        </translation>
    </message>
    <message>
        <source>Links that loop, unreadable entries, files already in the queue, names that OSS cannot take as object keys and later files for a name another file goes to are left out; each line of the details says why.</source>
        <translation>循环链接、无法读取的项目、已在队列中的文件、OSS 不接受作为对象名的名称，以及与其他文件上传到同一名称的后来文件均未添加；详细信息中每一行都说明了原因。</translation>
    </message>
    <message>
        <source>Forget these</source>
        <translation>清除这些记录</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) of it had been added before.</source>
        <translation>
            <numerusform>其中 %n 个文件已在此之前添加。</numerusform>
        </translation>
    </message>
    <message>
        <source>%1. %2</source>
        <comment>what was added, then a warning</comment>
        <translation>%1。%2</translation>
    </message>
</context>
<context>
    <name>EventBridge</name>
    <message>
        <source>Retrying in %1 s (attempt %2 of %3): %4</source>
        <extracomment>With events still waiting after a tick, the next one comes this soon. A timer tick stops applying events after about this long (seconds) ... ... checked after each chunk of this many rows&apos; worth of events.</extracomment>
        <translation>%1 秒后重试（第 %2 次，共 %3 次）：%4</translation>
    </message>
    <message>
        <source>%1

Error code: %2
Kind: %3
Retryable: %4</source>
        <extracomment>With events still waiting after a tick, the next one comes this soon. A timer tick stops applying events after about this long (seconds) ... ... checked after each chunk of this many rows&apos; worth of events.</extracomment>
        <translation>%1

错误码：%2
类型：%3
可重试：%4</translation>
    </message>
    <message>
        <source>yes</source>
        <translation>是</translation>
    </message>
    <message>
        <source>no</source>
        <translation>否</translation>
    </message>
</context>
<context>
    <name>FirstRunPanel</name>
    <message>
        <source>Welcome to ossdesk</source>
        <translation>欢迎使用 ossdesk</translation>
    </message>
    <message>
        <source>ossdesk uploads files and folders to Alibaba Cloud OSS, resumes after any interruption and checks every object it uploads. Start by adding your OSS account, or try everything first with a local sandbox.</source>
        <translation>ossdesk 将文件和文件夹上传到阿里云 OSS，任何中断后都能继续上传，并校验上传的每个对象。请先添加您的 OSS 账号，或者先用本地沙盒体验全部功能。</translation>
    </message>
    <message>
        <source>Add an OSS account</source>
        <translation>添加 OSS 账号</translation>
    </message>
    <message>
        <source>Try it with a local sandbox</source>
        <translation>用本地沙盒试用</translation>
    </message>
    <message>
        <source>The sandbox is a private test server on this computer: nothing leaves your machine and no account is needed.</source>
        <translation>沙盒是运行在本机上的私有测试服务器：数据不会离开您的电脑，也不需要账号。</translation>
    </message>
</context>
<context>
    <name>FolderBrowserDialog</name>
    <message>
        <source>Choose a folder in %1</source>
        <translation>在 %1 中选择文件夹</translation>
    </message>
    <message>
        <source>Choose</source>
        <translation>选择</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>%1 (top level)</source>
        <translation>%1（根目录）</translation>
    </message>
    <message>
        <source>Loading…</source>
        <translation>正在加载…</translation>
    </message>
    <message>
        <source>Could not list the bucket: %1</source>
        <translation>无法列出 Bucket 内容：%1</translation>
    </message>
</context>
<context>
    <name>FolderDetailsDialog</name>
    <message>
        <source>Details of %1</source>
        <translation>%1 的详细信息</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>State:</source>
        <translation>状态：</translation>
    </message>
    <message>
        <source>Files:</source>
        <translation>文件：</translation>
    </message>
    <message>
        <source>Size:</source>
        <translation>大小：</translation>
    </message>
    <message>
        <source>Confirmed by OSS:</source>
        <translation>OSS 已确认：</translation>
    </message>
    <message>
        <source>%1 of %2 (%3 %)</source>
        <translation>%1 / %2（%3 %）</translation>
    </message>
    <message>
        <source>Sent:</source>
        <translation>已发送：</translation>
    </message>
    <message>
        <source>Folder:</source>
        <translation>文件夹：</translation>
    </message>
    <message>
        <source>Destination:</source>
        <translation>目标：</translation>
    </message>
    <message>
        <source>Account:</source>
        <translation>账号：</translation>
    </message>
    <message>
        <source>and %1 more (the Failed filter shows them all)</source>
        <translation>另有 %1 个（“失败”筛选显示全部）</translation>
    </message>
    <message>
        <source>Failed files:</source>
        <translation>失败的文件：</translation>
    </message>
</context>
<context>
    <name>FolderRow</name>
    <message>
        <source>%1 · %2/%3</source>
        <translation>%1 · %2/%3</translation>
    </message>
    <message>
        <source>%1 · %2 of %3 files done</source>
        <translation>%1 · 已完成 %2 / %3 个文件</translation>
    </message>
    <message>
        <source>%1 failed</source>
        <translation>%1 个失败</translation>
    </message>
    <message>
        <source>Failed: %1 of %2 files</source>
        <translation>失败：%2 个文件中有 %1 个</translation>
    </message>
    <message>
        <source>%1 verified (CRC-64)</source>
        <translation>%1 个已验证（CRC-64）</translation>
    </message>
    <message>
        <source>%1 verified (MD5)</source>
        <translation>%1 个已验证（MD5）</translation>
    </message>
    <message>
        <source>%1 done</source>
        <translation>%1 个已完成</translation>
    </message>
    <message>
        <source>%1 already there</source>
        <translation>%1 个已存在</translation>
    </message>
    <message>
        <source>%1 cancelled</source>
        <translation>%1 个已取消</translation>
    </message>
</context>
<context>
    <name>Format</name>
    <message>
        <source>%1/s</source>
        <translation>%1/秒</translation>
    </message>
    <message>
        <source>%1 d %2 h</source>
        <translation>%1 天 %2 小时</translation>
    </message>
    <message>
        <source>%1 h %2 min</source>
        <translation>%1 小时 %2 分</translation>
    </message>
    <message>
        <source>%1 min %2 s</source>
        <translation>%1 分 %2 秒</translation>
    </message>
    <message>
        <source>%1 s</source>
        <translation>%1 秒</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>ossdesk: uploads to Alibaba Cloud OSS</source>
        <translation>ossdesk：上传到阿里云 OSS</translation>
    </message>
    <message>
        <source>Add files…</source>
        <translation>添加文件…</translation>
    </message>
    <message>
        <source>Choose files to upload</source>
        <translation>选择要上传的文件</translation>
    </message>
    <message>
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <source>Choose a folder to upload</source>
        <translation>选择要上传的文件夹</translation>
    </message>
    <message>
        <source>Pause all</source>
        <translation>全部暂停</translation>
    </message>
    <message>
        <source>Pause every upload</source>
        <translation>暂停所有上传</translation>
    </message>
    <message>
        <source>Resume all</source>
        <translation>全部继续</translation>
    </message>
    <message>
        <source>Resume every paused upload</source>
        <translation>继续所有已暂停的上传</translation>
    </message>
    <message>
        <source>Clear finished</source>
        <translation>清除已完成</translation>
    </message>
    <message>
        <source>Remove the done, cancelled and skipped files from the list</source>
        <translation>从列表中移除已完成、已取消和已跳过的文件</translation>
    </message>
    <message>
        <source>Settings…</source>
        <translation>设置…</translation>
    </message>
    <message>
        <source>Limits, part size, language</source>
        <translation>并发限制、分片大小、语言</translation>
    </message>
    <message>
        <source>Accounts…</source>
        <translation>账号…</translation>
    </message>
    <message>
        <source>Add, edit or remove OSS accounts</source>
        <translation>添加、编辑或删除 OSS 账号</translation>
    </message>
    <message>
        <source>Main toolbar</source>
        <translation>主工具栏</translation>
    </message>
    <message>
        <source>Unfinished uploads…</source>
        <translation>未完成的上传…</translation>
    </message>
    <message>
        <source>Multipart uploads left unfinished in this bucket, by ossdesk or other programs</source>
        <translation>此 Bucket 中由 ossdesk 或其他程序留下的未完成分片上传</translation>
    </message>
    <message>
        <source>Drop files or folders here</source>
        <translation>将文件或文件夹拖放到这里</translation>
    </message>
    <message>
        <source>or use Add files / Add folder above. Each file is uploaded to the bucket and folder shown at the top, and checked once it is there.</source>
        <translation>或使用上方的“添加文件”/“添加文件夹”。每个文件都会上传到顶部所示的 Bucket 和文件夹，上传后会进行校验。</translation>
    </message>
    <message>
        <source>Accounts</source>
        <translation>账号</translation>
    </message>
    <message>
        <source>Accounts are not available in this build.</source>
        <translation>此版本不支持账号管理。</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s)</source>
        <translation>
            <numerusform>%n 个文件</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n uploading</source>
        <translation>
            <numerusform>%n 个上传中</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n uploading (small files beside the %1 at once)</source>
        <translation>
            <numerusform>%n 个上传中（小文件在同时上传的 %1 个之外并行）</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n paused</source>
        <translation>
            <numerusform>%n 个已暂停</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n failed</source>
        <translation>
            <numerusform>%n 个失败</numerusform>
        </translation>
    </message>
    <message>
        <source>%1 of %2 uploaded</source>
        <translation>已上传 %1 / %2</translation>
    </message>
    <message>
        <source>%1 of %2 sent, %3 confirmed by OSS</source>
        <translation>已发送 %1 / %2，OSS 已确认 %3</translation>
    </message>
    <message>
        <source>%1 left</source>
        <translation>剩余 %1</translation>
    </message>
    <message>
        <source>%1 failed: %2</source>
        <translation>%1 上传失败：%2</translation>
    </message>
    <message>
        <source>Uploads cannot start</source>
        <translation>无法开始上传</translation>
    </message>
    <message>
        <source>ossdesk cannot open its list of uploads.</source>
        <translation>ossdesk 无法打开上传列表。</translation>
    </message>
    <message>
        <source>Uploads in progress</source>
        <translation>正在上传</translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) are still running.</source>
        <translation>
            <numerusform>还有 %n 个上传正在进行。</numerusform>
        </translation>
    </message>
    <message>
        <source>Paused uploads continue where they stopped the next time you open ossdesk.</source>
        <translation>下次打开 ossdesk 时，已暂停的上传会从中断处继续。</translation>
    </message>
    <message>
        <source>Pause and quit</source>
        <translation>暂停并退出</translation>
    </message>
    <message>
        <source>Keep uploading in the tray</source>
        <translation>最小化到托盘继续上传</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) of it had been added before.</source>
        <translation>
            <numerusform>其中 %n 个文件已在此之前添加。</numerusform>
        </translation>
    </message>
    <message>
        <source>ossdesk</source>
        <translation>ossdesk</translation>
    </message>
</context>
<context>
    <name>Refusals</name>
    <message>
        <source>%1 and %2 both go to %3; %1 is not uploaded</source>
        <translation>%1 和 %2 都要上传到 %3；%1 不上传</translation>
    </message>
    <message>
        <source>the object key %1 contains control characters, which OSS does not take; rename the file to upload it</source>
        <translation>对象名 %1 含有控制字符，OSS 不接受；请重命名文件后再上传</translation>
    </message>
    <message>
        <source>the object key %1 contains a &apos;.&apos; or &apos;..&apos; segment, which OSS does not take; choose another folder in the bucket</source>
        <translation>对象名 %1 含有“.”或“..”路径段，OSS 不接受；请在存储空间中选择其他文件夹</translation>
    </message>
    <message>
        <source>the object key is %1 bytes long; OSS allows at most %2 (UTF-8): use a shorter folder or file name</source>
        <translation>对象名长 %1 字节；OSS 最多允许 %2 字节（UTF-8）：请使用更短的文件夹名或文件名</translation>
    </message>
    <message>
        <source>the object key %1 starts with a slash, which OSS does not take; rename the file to upload it</source>
        <translation>对象名 %1 以斜杠开头，OSS 不接受；请重命名文件后再上传</translation>
    </message>
    <message>
        <source>the object key %1 is not in NFC form</source>
        <translation>对象名 %1 不是 NFC 形式</translation>
    </message>
    <message>
        <source>the object key would be empty</source>
        <translation>对象名将为空</translation>
    </message>
    <message>
        <source>the name is not valid UTF-8; rename it to upload it</source>
        <translation>名称不是有效的 UTF-8；请重命名后再上传</translation>
    </message>
</context>
<context>
    <name>ObjectOptionsDialog</name>
    <message>
        <source>%1 can hold neither line breaks nor characters outside Latin-1 (for a file name write filename*=UTF-8''...).</source>
        <translation>%1 不能包含换行符或 Latin-1 以外的字符（文件名请写成 filename*=UTF-8''...）。</translation>
    </message>
    <message>
        <source>Tags: write KEY=VALUE, several joined by &amp;; at most 10 tags, no key twice; keys of up to 128 and values of up to 256 characters, made of letters, digits, spaces and + - = . _ : /</source>
        <translation>标签：请写成 键=值，多个用 &amp; 连接；最多 10 个标签，键不能重复；键最长 128 个字符，值最长 256 个字符，只能包含字母、数字、空格和 + - = . _ : /</translation>
    </message>
    <message>
        <source>Metadata: write NAME=VALUE, one a line; a name holds letters, digits and - only.</source>
        <translation>元数据：请写成 名称=值，每行一个；名称只能包含字母、数字和 -。</translation>
    </message>
    <message>
        <source>The KMS key ID can hold neither line breaks nor characters outside Latin-1.</source>
        <translation>KMS 密钥 ID 不能包含换行符或 Latin-1 以外的字符。</translation>
    </message>
    <message>
        <source>Standard</source>
        <translation>标准存储</translation>
    </message>
    <message>
        <source>Infrequent Access (IA)</source>
        <translation>低频访问（IA）</translation>
    </message>
    <message>
        <source>Archive</source>
        <translation>归档存储</translation>
    </message>
    <message>
        <source>Cold Archive</source>
        <translation>冷归档存储</translation>
    </message>
    <message>
        <source>Deep Cold Archive</source>
        <translation>深度冷归档存储</translation>
    </message>
    <message>
        <source>Private</source>
        <translation>私有</translation>
    </message>
    <message>
        <source>Public read</source>
        <translation>公共读</translation>
    </message>
    <message>
        <source>Public read and write</source>
        <translation>公共读写</translation>
    </message>
    <message>
        <source>Managed by OSS (AES256)</source>
        <translation>OSS 完全托管（AES256）</translation>
    </message>
    <message>
        <source>KMS</source>
        <translation>KMS</translation>
    </message>
    <message>
        <source>Upload options</source>
        <translation>上传选项</translation>
    </message>
    <message>
        <source>Files added to %1 are uploaded with these options. Uploads already in the queue keep theirs.</source>
        <translation>添加到 %1 的文件将按这些选项上传。已在队列中的上传保留其原有选项。</translation>
    </message>
    <message>
        <source>Bucket default</source>
        <translation>Bucket 默认</translation>
    </message>
    <message>
        <source>From the file name</source>
        <translation>根据文件名</translation>
    </message>
    <message>
        <source>NAME=VALUE, one a line</source>
        <translation>名称=值，每行一个</translation>
    </message>
    <message>
        <source>None (bucket default)</source>
        <translation>不加密（Bucket 默认）</translation>
    </message>
    <message>
        <source>OSS's default key</source>
        <translation>OSS 默认密钥</translation>
    </message>
    <message>
        <source>Storage class:</source>
        <translation>存储类型：</translation>
    </message>
    <message>
        <source>Access (ACL):</source>
        <translation>读写权限（ACL）：</translation>
    </message>
    <message>
        <source>Content-Type:</source>
        <translation>Content-Type：</translation>
    </message>
    <message>
        <source>Cache-Control:</source>
        <translation>Cache-Control：</translation>
    </message>
    <message>
        <source>Content-Disposition:</source>
        <translation>Content-Disposition：</translation>
    </message>
    <message>
        <source>Metadata:</source>
        <translation>元数据：</translation>
    </message>
    <message>
        <source>Tags:</source>
        <translation>标签：</translation>
    </message>
    <message>
        <source>Server-side encryption:</source>
        <translation>服务端加密：</translation>
    </message>
    <message>
        <source>KMS key ID:</source>
        <translation>KMS 密钥 ID：</translation>
    </message>
    <message>
        <source>Clear all</source>
        <translation>全部清除</translation>
    </message>
    <message>
        <source>Not saved. %1</source>
        <translation>未保存。%1</translation>
    </message>
</context>
<context>
    <name>RowActions</name>
    <message>
        <source>Pause</source>
        <translation>暂停</translation>
    </message>
    <message>
        <source>Pause; the parts already uploaded are kept</source>
        <translation>暂停；已上传的分片会保留</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>继续</translation>
    </message>
    <message>
        <source>Continue where it stopped</source>
        <translation>从中断处继续</translation>
    </message>
    <message>
        <source>Cancel upload</source>
        <translation>取消上传</translation>
    </message>
    <message>
        <source>Stop and discard the parts uploaded so far</source>
        <translation>停止并丢弃已上传的分片</translation>
    </message>
    <message>
        <source>Retry</source>
        <translation>重试</translation>
    </message>
    <message>
        <source>Try a failed or cancelled upload again</source>
        <translation>重新上传失败或已取消的文件</translation>
    </message>
    <message>
        <source>Remove from list</source>
        <translation>从列表中移除</translation>
    </message>
    <message>
        <source>Remove from the list (an unfinished upload is cancelled)</source>
        <translation>从列表中移除（未完成的上传会被取消）</translation>
    </message>
    <message>
        <source>Open containing folder</source>
        <translation>打开所在文件夹</translation>
    </message>
    <message>
        <source>Show the local file in the file manager</source>
        <translation>在文件管理器中显示本地文件</translation>
    </message>
    <message>
        <source>Copy object URL</source>
        <translation>复制对象地址</translation>
    </message>
    <message>
        <source>Copy the object&apos;s address</source>
        <translation>复制对象的访问地址</translation>
    </message>
    <message>
        <source>Details…</source>
        <translation>详细信息…</translation>
    </message>
    <message>
        <source>How the file was verified, its checksum, upload id, parts and times</source>
        <translation>文件的校验方式、校验值、上传 ID、分片和时间</translation>
    </message>
    <message>
        <source>Copy pre-signed link…</source>
        <translation>复制预签名链接…</translation>
    </message>
    <message>
        <source>Copy a link anyone can download from until it expires</source>
        <translation>复制一个链接，过期前任何人都可以通过它下载</translation>
    </message>
    <message>
        <source>Show error details…</source>
        <translation>查看错误详情…</translation>
    </message>
    <message>
        <source>Why this upload failed</source>
        <translation>查看上传失败的原因</translation>
    </message>
    <message>
        <source>Move to top</source>
        <translation>移到最前</translation>
    </message>
    <message>
        <source>Upload these next</source>
        <translation>接下来上传这些文件</translation>
    </message>
    <message>
        <source>Move up</source>
        <translation>上移</translation>
    </message>
    <message>
        <source>Upload these one place sooner</source>
        <translation>把这些文件提前一位上传</translation>
    </message>
    <message>
        <source>Move down</source>
        <translation>下移</translation>
    </message>
    <message>
        <source>Upload these one place later</source>
        <translation>把这些文件推后一位上传</translation>
    </message>
    <message>
        <source>Move to bottom</source>
        <translation>移到最后</translation>
    </message>
    <message>
        <source>Upload these last</source>
        <translation>最后上传这些文件</translation>
    </message>
    <message>
        <source>Cancel uploads</source>
        <translation>取消上传</translation>
    </message>
    <message numerus="yes">
        <source>Cancel %n upload(s)? The parts uploaded so far are discarded; a retry starts from the beginning.</source>
        <translation>
            <numerusform>要取消 %n 个上传吗？已上传的分片将被丢弃，重试时会从头开始。</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n unfinished upload(s) will be cancelled and their uploaded parts discarded. Remove them?</source>
        <translation>
            <numerusform>%n 个未完成的上传将被取消，已上传的分片会被丢弃。确定移除吗？</numerusform>
        </translation>
    </message>
    <message>
        <source>Copied: %1</source>
        <translation>已复制：%1</translation>
    </message>
    <message>
        <source>1 hour</source>
        <translation>1 小时</translation>
    </message>
    <message>
        <source>1 day</source>
        <translation>1 天</translation>
    </message>
    <message>
        <source>7 days (the longest OSS allows)</source>
        <translation>7 天（OSS 允许的最长时间）</translation>
    </message>
    <message>
        <source>Pre-signed link</source>
        <translation>预签名链接</translation>
    </message>
    <message>
        <source>Anyone with the link can download the file until it expires. Valid for:</source>
        <translation>在链接过期前，任何拿到链接的人都可以下载该文件。有效期：</translation>
    </message>
    <message>
        <source>Pre-signed link copied to the clipboard</source>
        <translation>预签名链接已复制到剪贴板</translation>
    </message>
    <message>
        <source>Could not make the link: %1</source>
        <translation>无法生成链接：%1</translation>
    </message>
    <message>
        <source>Error details</source>
        <translation>错误详情</translation>
    </message>
    <message>
        <source>%1 could not be uploaded.</source>
        <translation>%1 上传失败。</translation>
    </message>
    <message>
        <source>File: %1
Destination: %2

%3</source>
        <translation>文件：%1
目标位置：%2

%3</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Automatic (chosen per file)</source>
        <translation>自动（按文件选择）</translation>
    </message>
    <message>
        <source>Fixed:</source>
        <translation>固定：</translation>
    </message>
    <message>
        <source>Unlimited</source>
        <translation>不限速</translation>
    </message>
    <message>
        <source>Never (every file is read again)</source>
        <translation>从不（每个文件都重新读取）</translation>
    </message>
    <message>
        <source>Before a file is called verified, ossdesk reads it again and compares its CRC-64 with what was sent, so a file rewritten during the upload is never published as a mix of old and new content. Files larger than this are not read again: faster for very large files on slow disks, but a change that keeps the file&apos;s size, times and identity would go unnoticed.</source>
        <translation>在标记文件为“已校验”之前，ossdesk 会重新读取该文件，并将其 CRC-64 与已发送的数据进行比较，因此上传期间被改写的文件绝不会以新旧内容混合的形式发布。大于此大小的文件不会被重新读取：对于慢速磁盘上的超大文件会更快，但如果文件被修改后大小、时间和标识都保持不变，这种修改将无法被发现。</translation>
    </message>
    <message>
        <source>Resume unfinished uploads when ossdesk starts</source>
        <translation>启动 ossdesk 时继续未完成的上传</translation>
    </message>
    <message>
        <source>Transfers</source>
        <translation>传输</translation>
    </message>
    <message>
        <source>Files at once:</source>
        <translation>同时上传的文件数：</translation>
    </message>
    <message>
        <source>Parts in flight (all files):</source>
        <translation>同时上传的分片数（所有文件）：</translation>
    </message>
    <message>
        <source>Part size:</source>
        <translation>分片大小：</translation>
    </message>
    <message>
        <source>Bandwidth limit:</source>
        <translation>带宽限制：</translation>
    </message>
    <message>
        <source>Skip the re-read above:</source>
        <translation>超过此大小不重新读取：</translation>
    </message>
    <message>
        <source>More parts in flight use a fast connection better; a bandwidth limit keeps the connection usable for other programs. Large files need parts of at least size/10,000, so a fixed size may be raised for them.</source>
        <translation>同时上传更多分片可以更充分地利用高速网络；限制带宽可以让其他程序继续正常联网。大文件的分片至少为文件大小的 1/10,000，因此对这类文件，固定的分片大小可能会被调大。</translation>
    </message>
    <message>
        <source>Same as the system</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <source>Appearance</source>
        <translation>外观</translation>
    </message>
    <message>
        <source>Language:</source>
        <translation>语言：</translation>
    </message>
    <message>
        <source>Light or dark: follows the system setting.</source>
        <translation>浅色或深色：跟随系统设置。</translation>
    </message>
    <message>
        <source>Theme:</source>
        <translation>主题：</translation>
    </message>
    <message>
        <source>OK</source>
        <translation>确定</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
</context>
<context>
    <name>UnfinishedUploadsDialog</name>
    <message>
        <source>Unfinished uploads in %1</source>
        <translation>%1 中未完成的上传</translation>
    </message>
    <message>
        <source>Multipart uploads that were started and never completed or aborted. OSS keeps their parts, and bills them, until they are aborted.</source>
        <translation>已开始但从未完成或取消的分片上传。在取消之前，OSS 会一直保留（并计费）它们的分片。</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <source>Started</source>
        <translation>开始时间</translation>
    </message>
    <message>
        <source>Parts</source>
        <translation>分片数</translation>
    </message>
    <message>
        <source>Size so far</source>
        <translation>已上传大小</translation>
    </message>
    <message>
        <source>Started by</source>
        <translation>发起者</translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>Abort selected…</source>
        <translation>取消所选…</translation>
    </message>
    <message>
        <source>Asking OSS…</source>
        <translation>正在查询 OSS…</translation>
    </message>
    <message>
        <source>The unfinished uploads could not be listed: %1</source>
        <translation>无法列出未完成的上传：%1</translation>
    </message>
    <message>
        <source>ossdesk (row %1)</source>
        <translation>ossdesk（第 %1 行）</translation>
    </message>
    <message>
        <source>Another program</source>
        <translation>其他程序</translation>
    </message>
    <message>
        <source>%1 unfinished upload(s), %2 of them started by ossdesk on this computer.</source>
        <translation>共 %1 个未完成的上传，其中 %2 个由本机的 ossdesk 发起。</translation>
    </message>
    <message>
        <source>No unfinished upload in this bucket.</source>
        <translation>此 Bucket 中没有未完成的上传。</translation>
    </message>
    <message>
        <source>Abort uploads</source>
        <translation>取消上传</translation>
    </message>
    <message>
        <source>Abort %1 unfinished upload(s)? Their parts are deleted from OSS; this cannot be undone.</source>
        <translation>取消 %1 个未完成的上传？其分片将从 OSS 删除，且无法恢复。</translation>
    </message>
    <message>
        <source>%1 of the chosen uploads belong to files in ossdesk's upload list (rows %2) and were not aborted: cancel those files in the queue, which aborts their uploads.</source>
        <translation>所选上传中有 %1 个属于 ossdesk 上传列表中的文件（第 %2 行），未被取消：请在队列中取消这些文件，这会同时取消它们的上传。</translation>
    </message>
    <message>
        <source>Aborting…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <source>%1 upload(s) aborted.</source>
        <translation>已取消 %1 个上传。</translation>
    </message>
    <message>
        <source>%1 could not be aborted (%2); it is still on OSS.</source>
        <translation>%1 无法取消（%2），它仍在 OSS 上。</translation>
    </message>
</context>
<context>
    <name>TransferModel</name>
    <message>
        <source>Name</source>
        <extracomment>Drag payload of rows moved inside the queue: a JSON list of row ids.</extracomment>
        <translation>名称</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>大小</translation>
    </message>
    <message>
        <source>Progress</source>
        <translation>进度</translation>
    </message>
    <message>
        <source>Speed</source>
        <translation>速度</translation>
    </message>
    <message>
        <source>Time left</source>
        <translation>剩余时间</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Destination</source>
        <translation>目标位置</translation>
    </message>
    <message>
        <source>%1 of %2 confirmed by OSS, %3 sent</source>
        <translation>OSS 已确认 %1 / %2，已发送 %3</translation>
    </message>
    <message>
        <source>%1 % (%2 % confirmed)</source>
        <translation>%1 %（已确认 %2 %）</translation>
    </message>
    <message>
        <source>Sent: %1 of %2 (%3 %)</source>
        <translation>已发送：%1 / %2（%3 %）</translation>
    </message>
    <message>
        <source>Confirmed by OSS: %1 (%2 %)</source>
        <translation>OSS 已确认：%1（%2 %）</translation>
    </message>
    <message>
        <source>The solid bar is what OSS has confirmed; the lighter bar is sent and not yet confirmed (OSS confirms a part once all of it has arrived).</source>
        <translation>实色部分是 OSS 已确认的数据；浅色部分已发送但尚未确认（OSS 在一个分片全部到达后才确认它）。</translation>
    </message>
    <message>
        <source>Account</source>
        <translation>账号</translation>
    </message>
</context>
<context>
    <name>TransferState</name>
    <message>
        <source>Waiting</source>
        <translation>等待中</translation>
    </message>
    <message>
        <source>Checking</source>
        <translation>检查中</translation>
    </message>
    <message>
        <source>Uploading</source>
        <translation>上传中</translation>
    </message>
    <message>
        <source>Verifying</source>
        <translation>校验中</translation>
    </message>
    <message>
        <source>Paused</source>
        <translation>已暂停</translation>
    </message>
    <message>
        <source>Done</source>
        <translation>已完成</translation>
    </message>
    <message>
        <source>Failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <source>Cancelled</source>
        <translation>已取消</translation>
    </message>
    <message>
        <source>Skipped (already there)</source>
        <translation>已跳过（已存在）</translation>
    </message>
    <message>
        <source>Retrying</source>
        <translation>等待重试</translation>
    </message>
    <message>
        <source>Verified (CRC-64)</source>
        <translation>已验证（CRC-64）</translation>
    </message>
    <message>
        <source>Verified (MD5)</source>
        <translation>已验证（MD5）</translation>
    </message>
</context>
<context>
    <name>QueueFilter</name>
    <message>
        <source>All</source>
        <translation>全部</translation>
    </message>
    <message>
        <source>Active</source>
        <translation>进行中</translation>
    </message>
    <message>
        <source>Failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <source>Done</source>
        <translation>已完成</translation>
    </message>
    <message>
        <source>Search by name</source>
        <translation>按名称搜索</translation>
    </message>
    <message>
        <source>Show only the files whose name contains this text</source>
        <translation>只显示名称包含此文字的文件</translation>
    </message>
</context>
<context>
    <name>DestinationBar</name>
    <message>
        <source>&amp;Account:</source>
        <translation>账号(&amp;A)：</translation>
    </message>
    <message>
        <source>&amp;Bucket:</source>
        <translation>Bucket(&amp;B)：</translation>
    </message>
    <message>
        <source>&amp;Folder:</source>
        <translation>文件夹(&amp;F)：</translation>
    </message>
    <message>
        <source>The OSS account that uploads</source>
        <translation>用于上传的 OSS 账号</translation>
    </message>
    <message>
        <source>bucket name</source>
        <translation>Bucket 名称</translation>
    </message>
    <message>
        <source>The bucket files are uploaded to</source>
        <translation>文件上传到的 Bucket</translation>
    </message>
    <message>
        <source>top level of the bucket</source>
        <translation>Bucket 根目录</translation>
    </message>
    <message>
        <source>The folder inside the bucket where dropped files go, e.g. photos/2024</source>
        <translation>拖入的文件在 Bucket 中存放的文件夹，例如 photos/2024</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <source>Pick a folder of the bucket</source>
        <translation>选择 Bucket 中的文件夹</translation>
    </message>
    <message>
        <source>Options…</source>
        <translation>选项…</translation>
    </message>
    <message>
        <source>Storage class, ACL, headers, metadata, tags and encryption of the files added to this bucket</source>
        <translation>添加到此 Bucket 的文件的存储类型、读写权限、请求头、元数据、标签和加密方式</translation>
    </message>
    <message>
        <source>Could not read the accounts: %1</source>
        <translation>无法读取账号：%1</translation>
    </message>
</context>
<context>
    <name>DetailsDialog</name>
    <message>
        <source>Details of %1</source>
        <translation>%1 的详细信息</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Copy URL</source>
        <translation>复制 URL</translation>
    </message>
    <message>
        <source>File:</source>
        <translation>文件：</translation>
    </message>
    <message>
        <source>Destination:</source>
        <translation>目标：</translation>
    </message>
    <message>
        <source>URL:</source>
        <translation>URL：</translation>
    </message>
    <message>
        <source>Account:</source>
        <translation>账号：</translation>
    </message>
    <message>
        <source>Size:</source>
        <translation>大小：</translation>
    </message>
    <message>
        <source>%1 (%2 bytes)</source>
        <translation>%1（%2 字节）</translation>
    </message>
    <message>
        <source>State:</source>
        <translation>状态：</translation>
    </message>
    <message>
        <source>Note:</source>
        <translation>说明：</translation>
    </message>
    <message>
        <source>The upload list no longer holds this file: only what the window shows is known.</source>
        <translation>上传列表中已没有此文件：只知道窗口中显示的信息。</translation>
    </message>
    <message>
        <source>Not sent: an object with the same size and CRC-64 was already there</source>
        <translation>未发送：已有大小和 CRC-64 都相同的对象</translation>
    </message>
    <message>
        <source>MD5 of each part (the server gave no CRC-64)</source>
        <translation>每个分片的 MD5（服务器未提供 CRC-64）</translation>
    </message>
    <message>
        <source>CRC-64: the object&apos;s CRC-64 equals the file&apos;s</source>
        <translation>CRC-64：对象的 CRC-64 与文件的一致</translation>
    </message>
    <message>
        <source>Not verified yet</source>
        <translation>尚未校验</translation>
    </message>
    <message>
        <source>None (sent in one request)</source>
        <translation>无（一次请求上传）</translation>
    </message>
    <message>
        <source>Verified by:</source>
        <translation>校验方式：</translation>
    </message>
    <message>
        <source>CRC-64:</source>
        <translation>CRC-64：</translation>
    </message>
    <message>
        <source>ETag:</source>
        <translation>ETag：</translation>
    </message>
    <message>
        <source>Upload id:</source>
        <translation>上传 ID：</translation>
    </message>
    <message>
        <source>Parts:</source>
        <translation>分片数：</translation>
    </message>
    <message>
        <source>Part size:</source>
        <translation>分片大小：</translation>
    </message>
    <message>
        <source>%1 (the first %2 parts), then %3</source>
        <translation>%1（前 %2 个分片），之后 %3</translation>
    </message>
    <message>
        <source>Queued:</source>
        <translation>加入队列：</translation>
    </message>
    <message>
        <source>Started:</source>
        <translation>开始：</translation>
    </message>
    <message>
        <source>Finished:</source>
        <translation>完成：</translation>
    </message>
</context>
<context>
    <name>TrayMenu</name>
    <message>
        <source>Show ossdesk</source>
        <translation>显示 ossdesk</translation>
    </message>
    <message>
        <source>Pause and quit</source>
        <translation>暂停并退出</translation>
    </message>
</context>
<context>
    <name>TrayStatus</name>
    <message>
        <source>No uploads in the queue</source>
        <translation>队列中没有上传</translation>
    </message>
    <message>
        <source>Nothing left to upload</source>
        <translation>没有需要上传的文件</translation>
    </message>
    <message numerus="yes">
        <source>%1 of %n file(s) uploaded</source>
        <translation>
            <numerusform>已上传 %1/%n 个文件</numerusform>
        </translation>
    </message>
    <message>
        <source>%1 left</source>
        <translation>剩余 %1</translation>
    </message>
    <message numerus="yes">
        <source>%n paused</source>
        <translation>
            <numerusform>%n 个已暂停</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) paused</source>
        <translation>
            <numerusform>%n 个上传已暂停</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%1 of %n file(s) uploaded and verified</source>
        <translation>
            <numerusform>%n 个文件中 %1 个已上传并校验</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) uploaded and verified</source>
        <translation>
            <numerusform>%n 个文件已上传并校验</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n failed</source>
        <translation>
            <numerusform>%n 个失败</numerusform>
        </translation>
    </message>
    <message>
        <source>, </source>
        <translation>，</translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) uploaded and verified.</source>
        <translation>
            <numerusform>%n 个文件已上传并校验。</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) failed.</source>
        <translation>
            <numerusform>%n 个上传失败。</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) paused.</source>
        <translation>
            <numerusform>%n 个上传已暂停。</numerusform>
        </translation>
    </message>
    <message>
        <source>Uploads stopped</source>
        <translation>上传已停止</translation>
    </message>
    <message>
        <source>Uploads paused</source>
        <translation>上传已暂停</translation>
    </message>
    <message>
        <source>Uploads finished</source>
        <translation>上传已完成</translation>
    </message>
    <message>
        <source>%1 failed: %2</source>
        <translation>%1 上传失败：%2</translation>
    </message>
    <message>
        <source>Upload failed</source>
        <translation>上传失败</translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) failed. The first: %1</source>
        <translation>
            <numerusform>%n 个上传失败。第一个：%1</numerusform>
        </translation>
    </message>
    <message>
        <source>Uploads failed</source>
        <translation>上传失败</translation>
    </message>
    <message>
        <source>%1 %2</source>
        <comment>two sentences</comment>
        <translation>%1%2</translation>
    </message>
</context>
<context>
    <name>WatchFolderDialog</name>
    <message>
        <source>Watch a folder</source>
        <translation>监视文件夹</translation>
    </message>
    <message>
        <source>Choose…</source>
        <translation>选择…</translation>
    </message>
    <message>
        <source>e.g. backups/renders</source>
        <translation>例如 backups/renders</translation>
    </message>
    <message>
        <source>Everything (one pattern a line, e.g. *.mov)</source>
        <translation>全部（每行一个模式，例如 *.mov）</translation>
    </message>
    <message>
        <source>Nothing more (one pattern a line, e.g. cache)</source>
        <translation>不再排除其他（每行一个模式，例如 cache）</translation>
    </message>
    <message>
        <source>Leave out hidden and temporary files (%1)</source>
        <translation>排除隐藏文件和临时文件（%1）</translation>
    </message>
    <message>
        <source>Folder on this computer:</source>
        <translation>本机文件夹：</translation>
    </message>
    <message>
        <source>Account:</source>
        <translation>账户：</translation>
    </message>
    <message>
        <source>Bucket:</source>
        <translation>存储桶：</translation>
    </message>
    <message>
        <source>Folder in the bucket:</source>
        <translation>存储桶中的文件夹：</translation>
    </message>
    <message>
        <source>Only files matching:</source>
        <translation>仅包含匹配的文件：</translation>
    </message>
    <message>
        <source>Leave out:</source>
        <translation>排除：</translation>
    </message>
    <message>
        <source>Each file that appears or changes in the folder is uploaded once it has stopped changing for a few seconds. Nothing is ever deleted from the bucket.</source>
        <translation>文件夹中新出现或有改动的文件，在停止变化几秒后上传。不会删除存储桶中的任何内容。</translation>
    </message>
    <message>
        <source>Watch</source>
        <translation>监视</translation>
    </message>
    <message>
        <source>Choose a folder to watch</source>
        <translation>选择要监视的文件夹</translation>
    </message>
    <message>
        <source>Choose the folder to watch.</source>
        <translation>请选择要监视的文件夹。</translation>
    </message>
    <message>
        <source>%1 is not a folder.</source>
        <translation>%1 不是文件夹。</translation>
    </message>
    <message>
        <source>Add an account first (Accounts).</source>
        <translation>请先添加账户（账户）。</translation>
    </message>
    <message>
        <source>Enter the bucket.</source>
        <translation>请输入存储桶。</translation>
    </message>
</context>
<context>
    <name>WatchedFolderModel</name>
    <message>
        <source>Folder</source>
        <translation>文件夹</translation>
    </message>
    <message>
        <source>Uploads to</source>
        <translation>上传到</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message numerus="yes">
        <source>Uploading %n file(s)</source>
        <translation>
            <numerusform>正在上传 %n 个文件</numerusform>
        </translation>
    </message>
    <message>
        <source>Paused</source>
        <translation>已暂停</translation>
    </message>
    <message>
        <source>Folder missing (unplugged or moved?): waiting for it</source>
        <translation>文件夹不见了（已拔出或已移动？）：等待它回来</translation>
    </message>
    <message>
        <source>Error: %1</source>
        <translation>错误：%1</translation>
    </message>
    <message>
        <source>Watching</source>
        <translation>监视中</translation>
    </message>
</context>
<context>
    <name>WatchedFoldersPanel</name>
    <message>
        <source>Watch a folder…</source>
        <translation>监视文件夹…</translation>
    </message>
    <message>
        <source>Pause watching</source>
        <translation>暂停监视</translation>
    </message>
    <message>
        <source>Resume watching</source>
        <translation>继续监视</translation>
    </message>
    <message>
        <source>Stop watching</source>
        <translation>停止监视</translation>
    </message>
    <message>
        <source>Removes the folder from this list. Nothing is deleted, here or in the bucket.</source>
        <translation>从列表中移除该文件夹。本机和存储桶中的内容都不会被删除。</translation>
    </message>
</context>
<context>
    <name>WatchedFoldersUi</name>
    <message>
        <source>Watch a folder…</source>
        <translation>监视文件夹…</translation>
    </message>
    <message>
        <source>Upload each file that appears or changes in a folder, once it stops changing</source>
        <translation>文件夹中新出现或有改动的文件，停止变化后即上传</translation>
    </message>
    <message>
        <source>Watched folders</source>
        <translation>监视的文件夹</translation>
    </message>
    <message>
        <source>Could not save the watched folder: %1</source>
        <translation>无法保存监视的文件夹：%1</translation>
    </message>
</context>
<context>
    <name>CancelledRow</name>
    <message>
        <source>Cancelled: the parts it had sent were discarded on the server. Retry starts it over.</source>
        <translation>已取消：已发送的分片已在服务器上丢弃。“重试”会从头开始上传。</translation>
    </message>
</context>
<context>
    <name>EngineMessages</name>
    <message>
        <source>the OSS endpoint</source>
        <translation>OSS Endpoint</translation>
    </message>
    <message>
        <source>the connection failed</source>
        <translation>连接失败</translation>
    </message>
    <message>
        <source>OSS could not be reached or did not accept it (%1, HTTP %2)</source>
        <translation>无法连接 OSS，或 OSS 未接受该请求（%1，HTTP %2）</translation>
    </message>
    <message>
        <source>OSS could not be reached or did not accept it (%1)</source>
        <translation>无法连接 OSS，或 OSS 未接受该请求（%1）</translation>
    </message>
    <message>
        <source>The proxy address is not an http:// or https:// proxy (the only kinds ossdesk uses). Check HTTPS_PROXY / HTTP_PROXY / NO_PROXY.</source>
        <translation>代理地址不是 http:// 或 https:// 代理（ossdesk 只使用这两种）。请检查 HTTPS_PROXY / HTTP_PROXY / NO_PROXY。</translation>
    </message>
    <message>
        <source>The proxy %1 could not carry the request to %2 (%3). Check HTTPS_PROXY / HTTP_PROXY / NO_PROXY.</source>
        <translation>代理 %1 无法把请求转发到 %2（%3）。请检查 HTTPS_PROXY / HTTP_PROXY / NO_PROXY。</translation>
    </message>
    <message>
        <source>The proxy %1 could not carry the request to %2. Check HTTPS_PROXY / HTTP_PROXY / NO_PROXY.</source>
        <translation>代理 %1 无法把请求转发到 %2。请检查 HTTPS_PROXY / HTTP_PROXY / NO_PROXY。</translation>
    </message>
    <message>
        <source>the proxy %1 could not carry the request (%2)</source>
        <translation>代理 %1 无法转发请求（%2）</translation>
    </message>
    <message>
        <source>the proxy %1 could not carry the request</source>
        <translation>代理 %1 无法转发请求</translation>
    </message>
    <message>
        <source>The proxy %1 refused the request: it wants a user name and password, or refused the ones given. Put them in the proxy address (http://USER:PASSWORD@HOST:PORT in HTTPS_PROXY / HTTP_PROXY).</source>
        <translation>代理 %1 拒绝了请求：它需要用户名和密码，或不接受所给的用户名和密码。请把它们写进代理地址（在 HTTPS_PROXY / HTTP_PROXY 中写成 http://USER:PASSWORD@HOST:PORT）。</translation>
    </message>
    <message>
        <source>The HTTPS certificate of %1 is not trusted, so nothing was sent. Check the endpoint address; %2</source>
        <translation>%1 的 HTTPS 证书不受信任，因此没有发送任何数据。请检查 Endpoint 地址；%2</translation>
    </message>
    <message>
        <source>if your network inspects HTTPS traffic, its certificate authority must be installed on this computer.</source>
        <translation>如果你的网络会检查 HTTPS 流量，须在本机安装其证书颁发机构。</translation>
    </message>
    <message>
        <source>if your network inspects HTTPS traffic, its certificate authority must be in the file REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) names.</source>
        <translation>如果你的网络会检查 HTTPS 流量，其证书颁发机构须在 REQUESTS_CA_BUNDLE（或 CURL_CA_BUNDLE）所指的文件中。</translation>
    </message>
    <message>
        <source>if your network inspects HTTPS traffic, name a file with its certificate authority in REQUESTS_CA_BUNDLE (this system's certificate store could not be used).</source>
        <translation>如果你的网络会检查 HTTPS 流量，请在 REQUESTS_CA_BUNDLE 中指定含有其证书颁发机构的文件（无法使用本系统的证书存储）。</translation>
    </message>
    <message>
        <source>The request to %1 could not be made: %2.</source>
        <translation>无法向 %1 发出请求：%2。</translation>
    </message>
    <message>
        <source>the request's address holds a control character or a space</source>
        <translation>请求地址中含有控制字符或空格</translation>
    </message>
    <message>
        <source>the header %1 holds a line break</source>
        <translation>请求头 %1 中含有换行符</translation>
    </message>
    <message>
        <source>%1 sent an answer that breaks HTTP (%2). Check the endpoint address and port; if they are right, tell the server's operator.</source>
        <translation>%1 的响应不符合 HTTP 规范（%2）。请检查 Endpoint 地址和端口；如果它们没错，请告知该服务器的管理员。</translation>
    </message>
    <message>
        <source>%1 sent an answer that breaks HTTP</source>
        <translation>%1 的响应不符合 HTTP 规范</translation>
    </message>
    <message>
        <source>The request is not valid: %1</source>
        <translation>请求无效（oss2 的原话：“%1”）</translation>
    </message>
    <message>
        <source>Data arrived damaged (checksum mismatch).</source>
        <translation>收到的数据已损坏（校验值不符）。</translation>
    </message>
    <message>
        <source>The request could not be made.</source>
        <translation>无法发出请求。</translation>
    </message>
    <message>
        <source>The credentials could not be read (%1). Check the profile's secret.</source>
        <translation>无法读取凭证（%1）。请检查账户的 Secret。</translation>
    </message>
    <message>
        <source>%1 is not an endpoint address. Write it like https://oss-cn-hangzhou.aliyuncs.com.</source>
        <translation>%1 不是 Endpoint 地址。请写成 https://oss-cn-hangzhou.aliyuncs.com 这样的形式。</translation>
    </message>
    <message>
        <source>%1 uses plain http: the data and the request signatures would travel unencrypted. Use https://, or confirm that plain http is wanted.</source>
        <translation>%1 使用未加密的 HTTP：数据和请求签名将以明文传输。请使用 https://，或确认确实要使用明文 HTTP。</translation>
    </message>
    <message>
        <source>The signature version must be v4 or v1.</source>
        <translation>签名版本必须是 v4 或 v1。</translation>
    </message>
    <message>
        <source>Signature V4 needs the bucket's region (like cn-hangzhou), and it cannot be read from %1. Enter the region in the profile, or choose signature V1.</source>
        <translation>V4 签名需要存储桶的地域（如 cn-hangzhou），而无法从 %1 中读出地域。请在账户中填写地域，或选择 V1 签名。</translation>
    </message>
    <message>
        <source>The bucket name %1 or the endpoint %2 is not valid. Bucket names are 3 to 63 lowercase letters, digits and hyphens.</source>
        <translation>存储桶名称 %1 或 Endpoint %2 无效。存储桶名称由 3 到 63 个小写字母、数字和连字符组成。</translation>
    </message>
    <message>
        <source>The credentials are valid but may neither read the bucket's information nor list it. Uploads work only if the RAM policy allows oss:PutObject; ask the bucket's owner.</source>
        <translation>凭证有效，但既无权读取存储桶的信息，也无权列出其中的对象。只有 RAM 策略允许 oss:PutObject 时才能上传；请询问存储桶所有者。</translation>
    </message>
    <message>
        <source>paused</source>
        <translation>已暂停</translation>
    </message>
    <message>
        <source>%1 Tried %2 time.</source>
        <translation>%1已尝试 %2 次。</translation>
    </message>
    <message>
        <source>part %1 of %2</source>
        <translation>%2 的第 %1 个分片</translation>
    </message>
    <message>
        <source>unexpected error: %1: %2</source>
        <translation>意外错误：%1：%2</translation>
    </message>
    <message>
        <source>OSS received %1 damaged on the way (its MD5 differed from the Content-MD5 sent) and refused it</source>
        <translation>OSS 收到的%1在传输中已损坏（其 MD5 与发送的 Content-MD5 不同），因此拒绝接收</translation>
    </message>
    <message>
        <source>OSS gave no CRC-64 for %1; it is sent again with its MD5</source>
        <translation>OSS 没有返回%1的 CRC-64；将附带其 MD5 重新发送</translation>
    </message>
    <message>
        <source>OSS gave no CRC-64 for %1, and its ETag (%2) is not the MD5 of the data sent (%3): the data cannot be verified</source>
        <translation>OSS 没有返回%1的 CRC-64，且其 ETag（%2）不是所发送数据的 MD5（%3）：无法校验数据</translation>
    </message>
    <message>
        <source>the CRC64 OSS reports for %1 (%2) does not match the data sent (%3)</source>
        <translation>OSS 报告的%1的 CRC64（%2）与所发送的数据（%3）不一致</translation>
    </message>
    <message>
        <source>%1: its size changed while it was read (%2 bytes stated, more read); it is a special file (like those in /proc), not a regular one, and is not uploaded</source>
        <translation>%1：读取时其大小发生了变化（声明 %2 字节，实际读到更多）；它是特殊文件（如 /proc 中的文件），不是普通文件，不会上传</translation>
    </message>
    <message>
        <source>%1: its size changed while it was read (%2 bytes stated, %3 read); it is a special file (like those in /proc), not a regular one, and is not uploaded</source>
        <translation>%1：读取时其大小发生了变化（声明 %2 字节，实际读到 %3）；它是特殊文件（如 /proc 中的文件），不是普通文件，不会上传</translation>
    </message>
    <message>
        <source>internal error: parts %1... do not cover the file</source>
        <translation>内部错误：分片 %1... 未覆盖整个文件</translation>
    </message>
    <message>
        <source>OSS answered the upload of %1 with an ETag that does not match the data, and the object does not match the file either: upload it again</source>
        <translation>OSS 对 %1 的上传返回的 ETag 与数据不符，对象也与文件不一致：请重新上传</translation>
    </message>
    <message>
        <source>%1 unfinished multipart upload of %2 begun at %3 (when ossdesk was interrupted while starting this file, around %4) was left alone: it may be the upload this computer began before it stopped, or another client's. It stays on the server, billed, until aborted: %5 lists it and can abort it</source>
        <translation>%2 有 %1 个未完成的分片上传（开始于 %3，即 ossdesk 在开始上传此文件时被中断的前后，约 %4）未被处理：它可能是本机停止前开始的上传，也可能属于其他客户端。在取消之前，它会一直留在服务器上并计费：%5 可以列出并取消它</translation>
    </message>
    <message>
        <source>%1 unfinished multipart uploads of %2 begun at %3 (when ossdesk was interrupted while starting this file, around %4) were left alone: one may be the upload this computer began before it stopped, others may be another client's. They stay on the server, billed, until aborted: %5 lists them and can abort them</source>
        <translation>%2 有 %1 个未完成的分片上传（开始于 %3，即 ossdesk 在开始上传此文件时被中断的前后，约 %4）未被处理：其中一个可能是本机停止前开始的上传，其他的可能属于其他客户端。在取消之前，它们会一直留在服务器上并计费：%5 可以列出并取消它们</translation>
    </message>
    <message>
        <source>the upload was no longer on the server when it was completed</source>
        <translation>完成上传时，该上传已不在服务器上</translation>
    </message>
    <message>
        <source>%1 changed while it was being uploaded, so it is sent again as it is now</source>
        <translation>%1 在上传过程中被修改，因此按其当前内容重新发送</translation>
    </message>
    <message>
        <source>not cancelled: its unfinished upload could not be aborted on the server (%1); cancel it again to abort it</source>
        <translation>未取消：无法在服务器上取消其未完成的上传（%1）；请再次取消以取消该上传</translation>
    </message>
    <message>
        <source>%1 is gone; its unfinished upload could not be aborted on the server (%2): %3 tries again, %4 aborts it and keeps it in the list as cancelled</source>
        <translation>%1 已不存在；无法在服务器上取消其未完成的上传（%2）：%3 会再次尝试，%4 会取消该上传，并在列表中保留为“已取消”</translation>
    </message>
    <message>
        <source>%1 became shorter while it was read</source>
        <translation>%1 在读取过程中变短了</translation>
    </message>
    <message>
        <source>cannot read %1: %2</source>
        <translation>无法读取 %1：%2</translation>
    </message>
    <message>
        <source>This file is %1; OSS stores objects of at most %2 (%3 parts of %4). Split the file into smaller pieces before uploading it.</source>
        <translation>此文件大小为 %1；OSS 存储的对象最大为 %2（%3 个 %4 的分片）。请先把文件拆分成更小的部分再上传。</translation>
    </message>
    <message>
        <source>The part size %1 is below the OSS minimum; %2 is used.</source>
        <translation>分片大小 %1 低于 OSS 的最小值；改用 %2。</translation>
    </message>
    <message>
        <source>The part size %1 is above the OSS maximum; %2 is used.</source>
        <translation>分片大小 %1 超过 OSS 的最大值；改用 %2。</translation>
    </message>
    <message>
        <source>With %1 parts this %2 file would need %3 parts, more than the OSS limit of %4; the part size is raised to %5.</source>
        <translation>按 %1 的分片大小，这个 %2 的文件需要 %3 个分片，超过了 OSS 的上限 %4；分片大小已提高到 %5。</translation>
    </message>
    <message>
        <source>an object key cannot be empty</source>
        <translation>对象名不能为空</translation>
    </message>
    <message>
        <source>the object key '%1' is not valid UTF-8</source>
        <translation>对象名 '%1' 不是有效的 UTF-8</translation>
    </message>
    <message>
        <source>the object key %1 is not in NFC form</source>
        <translation>对象名 %1 不是 NFC 形式</translation>
    </message>
    <message>
        <source>the object key %1 starts with %2, which OSS does not allow</source>
        <translation>对象名 %1 以 %2 开头，OSS 不允许这样</translation>
    </message>
    <message>
        <source>the object key for %1... is %2 bytes long; OSS allows at most %3 (UTF-8): use a shorter prefix or file name</source>
        <translation>%1... 的对象名长 %2 字节；OSS 最多允许 %3 字节（UTF-8）：请使用更短的前缀或文件名</translation>
    </message>
    <message>
        <source>the object key %1 contains a '.' or '..' segment</source>
        <translation>对象名 %1 中含有 '.' 或 '..' 段</translation>
    </message>
    <message>
        <source>the object key %1 contains control characters</source>
        <translation>对象名 %1 中含有控制字符</translation>
    </message>
    <message>
        <source>%1: no such file or folder</source>
        <translation>%1：没有这个文件或文件夹</translation>
    </message>
    <message>
        <source>%1: not a regular file or folder</source>
        <translation>%1：不是普通文件或文件夹</translation>
    </message>
    <message>
        <source>%1: not a regular file; skipped</source>
        <translation>%1：不是普通文件；已跳过</translation>
    </message>
    <message>
        <source>%1: cannot be read (%2)</source>
        <translation>%1：无法读取（%2）</translation>
    </message>
    <message>
        <source>%1: cannot be listed (%2)</source>
        <translation>%1：无法列出其内容（%2）</translation>
    </message>
    <message>
        <source>%1: permission denied</source>
        <translation>%1：权限不足</translation>
    </message>
    <message>
        <source>%1: a link back to a folder already included (a loop); skipped</source>
        <translation>%1：指回已包含的文件夹的链接（循环）；已跳过</translation>
    </message>
    <message>
        <source>%1: the name is not valid UTF-8, which an object key and the upload list must be; rename it to upload it (left out)</source>
        <translation>%1：名称不是有效的 UTF-8，而对象名和上传列表都要求 UTF-8；重命名后才能上传（已略过）</translation>
    </message>
    <message>
        <source>the folder of the upload list, %1, cannot be written (%2); ossdesk writes there even to read the list: make it writable, or set OSSDESK_HOME to a folder that is</source>
        <translation>上传列表所在的文件夹 %1 无法写入（%2）；即使只读取列表，ossdesk 也要在那里写入：请让它可写，或把 OSSDESK_HOME 设为一个可写的文件夹</translation>
    </message>
    <message>
        <source>the upload list could not be updated: its rows do not agree with each other</source>
        <translation>无法更新上传列表：其中的行相互矛盾</translation>
    </message>
    <message>
        <source>cannot create the folder for the upload list %1: %2</source>
        <translation>无法创建上传列表 %1 的文件夹：%2</translation>
    </message>
    <message>
        <source>cannot lock the upload list %1: %2</source>
        <translation>无法锁定上传列表 %1：%2</translation>
    </message>
    <message>
        <source>cannot open the upload list %1: %2</source>
        <translation>无法打开上传列表 %1：%2</translation>
    </message>
    <message>
        <source>the upload list %1 cannot be used: %2</source>
        <translation>上传列表 %1 无法使用：%2</translation>
    </message>
    <message>
        <source>the upload list is closed</source>
        <translation>上传列表已关闭</translation>
    </message>
    <message>
        <source>there is no upload list yet</source>
        <translation>还没有上传列表</translation>
    </message>
    <message>
        <source>the upload list needs an update; run an upload first</source>
        <translation>上传列表需要更新；请先运行一次上传</translation>
    </message>
    <message>
        <source>Finished adding %1, which was still being listed when ossdesk stopped: %2 more file(s) added.</source>
        <translation>已完成添加 %1（ossdesk 停止时仍在列出其内容）：又添加了 %2 个文件。</translation>
    </message>
    <message>
        <source>Finished adding %1, which was still being listed when ossdesk stopped: %2 more file(s) added; %3 item(s) skipped: %4.</source>
        <translation>已完成添加 %1（ossdesk 停止时仍在列出其内容）：又添加了 %2 个文件；跳过了 %3 项：%4。</translation>
    </message>
    <message>
        <source>%1 and %2 both go to %3; %4 is not added</source>
        <translation>%1 和 %2 都会上传到 %3；%4 未添加</translation>
    </message>
    <message>
        <source>%1 file(s) of %2 were in the queue already: they continue there.</source>
        <translation>%2 中有 %1 个文件已在队列中：在原来的位置继续上传。</translation>
    </message>
    <message>
        <source>%1 file(s) of %2 were in the queue already: they stay there (uploads do not resume by themselves: Resume or Retry continues them).</source>
        <translation>%2 中有 %1 个文件已在队列中：它们留在原处（上传不会自动继续：用“继续”或“重试”让它们继续）。</translation>
    </message>
    <message>
        <source>%1: the unfinished upload of %2 in the list (row %3) was to be written with %4</source>
        <translation>%1：列表中 %2 未完成的上传（第 %3 行）原本要以%4写入</translation>
    </message>
    <message>
        <source>%1: the unfinished upload of %2 in the list (row %3) was to be written with %4 (and the file changed since it began)</source>
        <translation>%1：列表中 %2 未完成的上传（第 %3 行）原本要以%4写入（且文件在上传开始后已更改）</translation>
    </message>
    <message>
        <source>it is cancelled (its multipart upload is aborted on the server) and the file is uploaded from the start with this run&apos;s options</source>
        <translation>该上传已取消（其分片上传已在服务器上中止），文件将按本次的选项从头上传</translation>
    </message>
    <message>
        <source>it is being cancelled (its multipart upload is being aborted on the server), then the file is uploaded from the start with this run&apos;s options</source>
        <translation>该上传正在取消（正在服务器上中止其分片上传），之后文件将按本次的选项从头上传</translation>
    </message>
    <message>
        <source>%1; it was cancelled (its multipart upload was aborted on the server) and the file is uploaded from the start with this run&apos;s options</source>
        <translation>%1；该上传已取消（其分片上传已在服务器上中止），文件按本次的选项从头上传</translation>
    </message>
    <message>
        <source>%1; it was finished before it could be cancelled, and the file is uploaded again with this run&apos;s options</source>
        <translation>%1；该上传在取消之前已完成，文件将按本次的选项再次上传</translation>
    </message>
    <message>
        <source>%1; it could not be aborted on the server (%2); %3 is not uploaded, so that the object is not written with the older options later: cancel that row, then add the file again</source>
        <translation>%1；无法在服务器上中止该上传（%2）；%3 未上传，以免对象日后以旧的选项写入：请先取消那一行，再重新添加该文件</translation>
    </message>
    <message>
        <source>another account</source>
        <translation>另一个账号</translation>
    </message>
    <message>
        <source>other metadata</source>
        <translation>其他元数据</translation>
    </message>
    <message>
        <source>another storage class</source>
        <translation>另一种存储类型</translation>
    </message>
    <message>
        <source>another Content-Type</source>
        <translation>另一个 Content-Type</translation>
    </message>
    <message>
        <source>another ACL</source>
        <translation>另一种 ACL</translation>
    </message>
    <message>
        <source>another Cache-Control</source>
        <translation>另一个 Cache-Control</translation>
    </message>
    <message>
        <source>another Content-Disposition</source>
        <translation>另一个 Content-Disposition</translation>
    </message>
    <message>
        <source>other tags</source>
        <translation>其他标签</translation>
    </message>
    <message>
        <source>another server-side encryption</source>
        <translation>另一种服务器端加密</translation>
    </message>
    <message>
        <source>another policy for an object already there</source>
        <translation>对已存在对象的另一种处理方式</translation>
    </message>
    <message>
        <source>The files of %1 could not all be added (%2); %3 were. They are added when ossdesk starts next time.</source>
        <translation>%1 中的文件未能全部添加（%2）；已添加 %3 个。其余的将在 ossdesk 下次启动时添加。</translation>
    </message>
    <message>
        <source>There is no profile named %1.</source>
        <translation>没有名为 %1 的账户。</translation>
    </message>
    <message>
        <source>The profile %1 has no AccessKey ID. Edit the profile and enter one.</source>
        <translation>账户 %1 没有 AccessKey ID。请编辑该账户并填写。</translation>
    </message>
    <message>
        <source>No AccessKey secret is stored for the profile %1. Edit the profile and enter the secret again.</source>
        <translation>账户 %1 没有保存 AccessKey Secret。请编辑该账户，重新输入 Secret。</translation>
    </message>
    <message>
        <source>no credentials: set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (and OSS_SESSION_TOKEN for STS) in the environment, or use a saved profile</source>
        <translation>没有凭证：请在环境变量中设置 OSS_ACCESS_KEY_ID 和 OSS_ACCESS_KEY_SECRET（使用 STS 时还需 OSS_SESSION_TOKEN），或使用已保存的账户</translation>
    </message>
    <message>
        <source>cannot get the secret of profile %1: %2</source>
        <translation>无法获取账户 %1 的 Secret：%2</translation>
    </message>
    <message>
        <source>writing to the keyring failed: %1</source>
        <translation>写入系统钥匙串失败：%1</translation>
    </message>
    <message>
        <source>reading the keyring failed: %1</source>
        <translation>读取系统钥匙串失败：%1</translation>
    </message>
    <message>
        <source>the secret of profile %1 would be in the keyring: %2</source>
        <translation>账户 %1 的 Secret 应在系统钥匙串中：%2</translation>
    </message>
    <message>
        <source>no keyring backend was found</source>
        <translation>找不到系统钥匙串</translation>
    </message>
    <message>
        <source>the only keyring found (%1) stores secrets in a plain file</source>
        <translation>找到的唯一钥匙串（%1）以明文文件保存密钥</translation>
    </message>
    <message>
        <source>the keyring could not be loaded: %1</source>
        <translation>无法加载系统钥匙串：%1</translation>
    </message>
    <message>
        <source>the keyring does not answer: %1</source>
        <translation>系统钥匙串没有响应：%1</translation>
    </message>
    <message>
        <source>another ossdesk is already uploading with this upload list; wait for it to finish (or pause it), then try again</source>
        <translation>另一个 ossdesk 正在使用此上传列表上传；请等它完成（或暂停它）后再试</translation>
    </message>
    <message>
        <source>The upload engine could not start: %1</source>
        <translation>上传引擎无法启动：%1</translation>
    </message>
    <message>
        <source>the upload engine has stopped</source>
        <translation>上传引擎已停止</translation>
    </message>
    <message>
        <source>The upload engine stopped unexpectedly (exit code %1). Uploads are paused where they were; open ossdesk again to continue them.</source>
        <translation>上传引擎意外停止（退出码 %1）。上传已在原处暂停；再次打开 ossdesk 即可继续。</translation>
    </message>
    <message>
        <source>The upload engine stopped unexpectedly (exit code %1) (%2). Uploads are paused where they were; open ossdesk again to continue them.</source>
        <translation>上传引擎意外停止（退出码 %1）（%2）。上传已在原处暂停；再次打开 ossdesk 即可继续。</translation>
    </message>
    <message>
        <source>Permission denied</source>
        <translation>权限不足</translation>
    </message>
    <message>
        <source>No such file or directory</source>
        <translation>没有这个文件或目录</translation>
    </message>
    <message>
        <source>Connection refused</source>
        <translation>连接被拒绝</translation>
    </message>
    <message>
        <source>Connection reset by peer</source>
        <translation>连接被对方重置</translation>
    </message>
    <message>
        <source>Network is unreachable</source>
        <translation>网络不可达</translation>
    </message>
    <message>
        <source>No route to host</source>
        <translation>没有到主机的路由</translation>
    </message>
    <message>
        <source>No space left on device</source>
        <translation>设备上没有剩余空间</translation>
    </message>
    <message>
        <source>Read-only file system</source>
        <translation>只读文件系统</translation>
    </message>
    <message>
        <source>%1 changed since its upload began, so it starts over</source>
        <translation>%1 在上传开始后被修改，因此从头开始上传</translation>
    </message>
    <message>
        <source>the earlier unfinished upload %1 of %2 could not be aborted: %3; its parts stay in the bucket, billed, until it is aborted (the bucket&apos;s unfinished uploads list it)</source>
        <translation>%2 之前未完成的上传 %1 无法中止：%3；其分片仍留在存储空间中并持续计费，直到被中止（存储空间的未完成上传列表中可以看到它）</translation>
    </message>
    <message>
        <source>there is no upload list of this version of ossdesk yet</source>
        <translation>还没有此版本 ossdesk 的上传列表</translation>
    </message>
    <message>
        <source>the upload list was written by a newer version of ossdesk</source>
        <translation>上传列表由更新版本的 ossdesk 写入</translation>
    </message>
    <message>
        <source>internal error: the recorded parts of %1 do not fit the file: %2</source>
        <translation>内部错误：%1 已记录的分片与文件不符：%2</translation>
    </message>
</context>
<context>
    <name>EngineText</name>
    <message>
        <source>The AccessKey secret does not match the AccessKey ID (the request signature was rejected). %1; for signature V4 also check the region.</source>
        <translation>AccessKey Secret 与 AccessKey ID 不匹配（请求签名被拒绝）。%1；如使用 V4 签名，还请检查地域。</translation>
    </message>
    <message>
        <source>OSS does not know this AccessKey ID (or the key is disabled). %1</source>
        <translation>OSS 不认识此 AccessKey ID（或该密钥已停用）。%1</translation>
    </message>
    <message>
        <source>OSS rejected the security token (STS): it is wrong, missing, or given where none is expected. %1</source>
        <translation>OSS 拒绝了安全令牌（STS）：令牌有误、缺失，或在不需要令牌时提供了令牌。%1</translation>
    </message>
    <message>
        <source>Enter the secret of the profile %1 again</source>
        <translation>请重新输入账户 %1 的 Secret</translation>
    </message>
    <message>
        <source>Enter the secret again</source>
        <translation>请重新输入 Secret</translation>
    </message>
    <message>
        <source>Check OSS_ACCESS_KEY_SECRET in the environment</source>
        <translation>请检查环境变量 OSS_ACCESS_KEY_SECRET</translation>
    </message>
    <message>
        <source>Check the AccessKey ID in the profile %1.</source>
        <translation>请检查账户 %1 的 AccessKey ID。</translation>
    </message>
    <message>
        <source>Check the AccessKey ID.</source>
        <translation>请检查 AccessKey ID。</translation>
    </message>
    <message>
        <source>Check OSS_ACCESS_KEY_ID in the environment.</source>
        <translation>请检查环境变量 OSS_ACCESS_KEY_ID。</translation>
    </message>
    <message>
        <source>Check the STS token of the profile %1 (only temporary credentials have one), or get new temporary credentials.</source>
        <translation>请检查账户 %1 的 STS 令牌（只有临时凭证才有），或获取新的临时凭证。</translation>
    </message>
    <message>
        <source>Check the STS token (only temporary credentials have one), or get new temporary credentials.</source>
        <translation>请检查 STS 令牌（只有临时凭证才有），或获取新的临时凭证。</translation>
    </message>
    <message>
        <source>Check OSS_SESSION_TOKEN in the environment: set it only for temporary credentials, together with the AccessKey pair it was issued with.</source>
        <translation>请检查环境变量 OSS_SESSION_TOKEN：仅在使用临时凭证时设置，并与签发它的 AccessKey 一同使用。</translation>
    </message>
    <message>
        <source>The temporary (STS) credentials have expired. Provide new credentials: uploads wait and go on from where they stopped.</source>
        <translation>临时（STS）凭证已过期。请提供新的凭证：上传会等待，并从停下的地方继续。</translation>
    </message>
    <message>
        <source>This bucket must be reached through the endpoint %1. Change the profile's endpoint (and region) to that one.</source>
        <translation>此存储桶须通过 Endpoint %1 访问。请将账户的 Endpoint（及地域）改为该地址。</translation>
    </message>
    <message>
        <source>The request was signed for another region than the bucket's (OSS says: %1). Check the region (--region, or the account's region); the endpoint's name usually holds it, e.g. oss-cn-hangzhou -&gt; cn-hangzhou.</source>
        <translation>请求签名所用的地域与存储桶的地域不同（OSS 的原话：“%1”）。请检查地域（--region 或账户的地域）；Endpoint 名称中通常含有地域，例如 oss-cn-hangzhou -&gt; cn-hangzhou。</translation>
    </message>
    <message>
        <source>These credentials are not allowed to do this in the bucket. Ask the bucket's owner for permission (a RAM policy), or use other credentials.</source>
        <translation>此凭证无权在该存储桶中执行此操作。请向存储桶所有者申请权限（RAM 策略），或使用其他凭证。</translation>
    </message>
    <message>
        <source>The bucket does not exist at this endpoint. Check the bucket name and the endpoint (region).</source>
        <translation>此 Endpoint 下不存在该存储桶。请检查存储桶名称和 Endpoint（地域）。</translation>
    </message>
    <message>
        <source>The bucket name is not valid. Check the bucket name.</source>
        <translation>存储桶名称无效。请检查存储桶名称。</translation>
    </message>
    <message>
        <source>OSS does not accept this object name: it must be 1 to 1023 bytes of UTF-8 and must not start with '/' or '\'. Rename the file or change the prefix.</source>
        <translation>OSS 不接受此对象名：它必须是 1 到 1023 字节的 UTF-8，且不能以 '/' 或 '\' 开头。请重命名文件或更改前缀。</translation>
    </message>
    <message>
        <source>The object name is longer than 1023 bytes. Use a shorter prefix or file name.</source>
        <translation>对象名超过 1023 字节。请使用更短的前缀或文件名。</translation>
    </message>
    <message>
        <source>This computer's clock differs from OSS's by more than 15 minutes. Correct the computer's date, time and time zone, then try again.</source>
        <translation>本机时钟与 OSS 相差超过 15 分钟。请校正本机的日期、时间和时区后重试。</translation>
    </message>
    <message>
        <source>OSS rejected an argument of the request. OSS says: %1</source>
        <translation>OSS 拒绝了请求中的一个参数。OSS 的原话：“%1”</translation>
    </message>
    <message>
        <source>OSS rejected an argument of the request.</source>
        <translation>OSS 拒绝了请求中的一个参数。</translation>
    </message>
    <message>
        <source>The object or part is larger than OSS accepts. OSS says: %1</source>
        <translation>对象或分片超过了 OSS 允许的大小。OSS 的原话：“%1”</translation>
    </message>
    <message>
        <source>The object or part is larger than OSS accepts.</source>
        <translation>对象或分片超过了 OSS 允许的大小。</translation>
    </message>
    <message>
        <source>A part is smaller than the OSS minimum of 100 KiB (only the last part may be). Upload the file again.</source>
        <translation>有分片小于 OSS 的最小值 100 KiB（只有最后一个分片可以更小）。请重新上传该文件。</translation>
    </message>
    <message>
        <source>OSS does not have a part as recorded (missing, or a different ETag). Upload the file again.</source>
        <translation>OSS 上的分片与记录不符（缺失或 ETag 不同）。请重新上传该文件。</translation>
    </message>
    <message>
        <source>The part list is not in ascending order.</source>
        <translation>分片列表未按升序排列。</translation>
    </message>
    <message>
        <source>The data OSS received does not match its checksum: the file may have changed while it was read. Upload it again.</source>
        <translation>OSS 收到的数据与其校验值不符：文件可能在读取时被修改。请重新上传。</translation>
    </message>
    <message>
        <source>An object with this name already exists and the upload may not overwrite it.</source>
        <translation>同名对象已存在，且本次上传不允许覆盖它。</translation>
    </message>
    <message>
        <source>OSS is temporarily unavailable.</source>
        <translation>OSS 暂时不可用。</translation>
    </message>
    <message>
        <source>OSS had an internal error.</source>
        <translation>OSS 发生内部错误。</translation>
    </message>
    <message>
        <source>OSS waited too long for data from this computer.</source>
        <translation>OSS 等待本机数据的时间过长。</translation>
    </message>
    <message>
        <source>OSS received less data than announced (the connection was cut).</source>
        <translation>OSS 收到的数据少于声明的长度（连接被中断）。</translation>
    </message>
    <message>
        <source>OSS asks to slow down (too many requests).</source>
        <translation>OSS 要求降低请求速度（请求过多）。</translation>
    </message>
    <message>
        <source>OSS no longer knows this multipart upload (it was aborted, completed or expired).</source>
        <translation>OSS 上已没有这个分片上传（已被取消、已完成或已过期）。</translation>
    </message>
    <message>
        <source>The object does not exist.</source>
        <translation>对象不存在。</translation>
    </message>
    <message>
        <source>OSS could not handle the request right now (HTTP %1).</source>
        <translation>OSS 暂时无法处理该请求（HTTP %1）。</translation>
    </message>
    <message>
        <source>OSS refused the request (HTTP %1).</source>
        <translation>OSS 拒绝了该请求（HTTP %1）。</translation>
    </message>
    <message>
        <source>OSS refused the request: %1</source>
        <translation>OSS 拒绝了该请求。OSS 的原话：“%1”</translation>
    </message>
    <message>
        <source>The HTTPS certificate of %1 is not trusted, so nothing was sent. Check the endpoint address; if your network inspects HTTPS traffic, its certificate authority must be installed on this computer.</source>
        <translation>%1 的 HTTPS 证书不受信任，因此没有发送任何数据。请检查 Endpoint 地址；如果你的网络会检查 HTTPS 流量，须在本机安装其证书颁发机构。</translation>
    </message>
    <message>
        <source>%1 does not answer HTTPS. Check the endpoint address (https:// or http://, and the port).</source>
        <translation>%1 不响应 HTTPS。请检查 Endpoint 地址（https:// 还是 http://，以及端口）。</translation>
    </message>
    <message>
        <source>The address of %1 could not be looked up. Check the endpoint and the network connection.</source>
        <translation>无法解析 %1 的地址。请检查 Endpoint 和网络连接。</translation>
    </message>
    <message>
        <source>cannot look up the address of %1</source>
        <translation>无法解析 %1 的地址</translation>
    </message>
    <message>
        <source>%1 does not speak OSS (its answer is not HTTP). Check the endpoint address and port.</source>
        <translation>%1 不是 OSS 服务（其响应不是 HTTP）。请检查 Endpoint 地址和端口。</translation>
    </message>
    <message>
        <source>%1 does not speak OSS (its answer is not HTTP)</source>
        <translation>%1 不是 OSS 服务（其响应不是 HTTP）</translation>
    </message>
    <message>
        <source>%1 refused the connection (nothing listens there, or a firewall blocks it). Check the endpoint.</source>
        <translation>%1 拒绝了连接（该处没有服务在监听，或被防火墙阻止）。请检查 Endpoint。</translation>
    </message>
    <message>
        <source>cannot connect to %1: connection refused</source>
        <translation>无法连接到 %1：连接被拒绝</translation>
    </message>
    <message>
        <source>Connecting to %1 timed out. Check the network connection.</source>
        <translation>连接 %1 超时。请检查网络连接。</translation>
    </message>
    <message>
        <source>cannot connect to %1: no answer in time</source>
        <translation>无法连接到 %1：未及时响应</translation>
    </message>
    <message>
        <source>Could not connect to %1 (%2). Check the network connection.</source>
        <translation>无法连接到 %1（%2）。请检查网络连接。</translation>
    </message>
    <message>
        <source>%1 did not answer in time.</source>
        <translation>%1 未及时响应。</translation>
    </message>
    <message>
        <source>%1 did not answer in time</source>
        <translation>%1 未及时响应</translation>
    </message>
    <message>
        <source>The connection to %1 was lost.</source>
        <translation>与 %1 的连接已断开。</translation>
    </message>
    <message>
        <source>the connection to %1 was lost</source>
        <translation>与 %1 的连接已断开</translation>
    </message>
    <message>
        <source>The request to %1 could not be made: check the endpoint.</source>
        <translation>无法向 %1 发出请求：请检查 Endpoint。</translation>
    </message>
    <message>
        <source>A network error occurred talking to %1.</source>
        <translation>与 %1 通信时发生网络错误。</translation>
    </message>
    <message>
        <source>network error talking to %1</source>
        <translation>与 %1 通信时发生网络错误</translation>
    </message>
    <message>
        <source>A local error stopped the transfer: %1.</source>
        <translation>本机错误使传输停止：%1。</translation>
    </message>
    <message>
        <source>An unexpected error stopped the request (%1). Please report it.</source>
        <translation>意外错误使请求停止（%1）。请报告此问题。</translation>
    </message>
    <message>
        <source>OSS answered HTTP %1 (%2)</source>
        <translation>OSS 返回 HTTP %1（%2）</translation>
    </message>
    <message>
        <source>OSS answered HTTP %1</source>
        <translation>OSS 返回 HTTP %1</translation>
    </message>
    <message>
        <source>cannot connect to %1: %2</source>
        <translation>无法连接到 %1：%2</translation>
    </message>
    <message>
        <source>%1 changed since its upload began, so it starts over (the parts already sent were discarded)</source>
        <translation>%1 在上传开始后被修改，因此从头开始上传（已发送的分片已丢弃）</translation>
    </message>
    <message>
        <source>The unfinished upload of %1 is no longer on the server (it expired or was cleaned up), so it starts over</source>
        <translation>%1 未完成的上传已不在服务器上（已过期或被清理），因此从头开始上传</translation>
    </message>
    <message>
        <source>%1 was touched since its upload began (its change time moved); the %2 already sent were read again and still match the file, so the upload goes on</source>
        <translation>%1 在上传开始后被改动过（其修改时间变了）；已发送的 %2 重新读取后仍与文件一致，因此继续上传</translation>
    </message>
    <message>
        <source>%1 changed since its upload began, before any part of it was sent; the upload goes on with the file as it is now</source>
        <translation>%1 在上传开始后、任何分片发送前被修改；将按文件的当前内容继续上传</translation>
    </message>
    <message>
        <source>skipped: already in OSS, identical (%1: same size and CRC-64)</source>
        <translation>已跳过：OSS 中已有相同的对象（%1：大小和 CRC-64 相同）</translation>
    </message>
    <message>
        <source>%1 changed while it was being uploaded (its change time moved); the whole file was read again and is exactly what was sent</source>
        <translation>%1 在上传过程中被改动过（其修改时间变了）；已重新读取整个文件，内容与已发送的完全一致</translation>
    </message>
    <message>
        <source>temporary (tried again)</source>
        <translation>临时错误（会重试）</translation>
    </message>
    <message>
        <source>needs a change before trying again</source>
        <translation>须先做修改才能重试</translation>
    </message>
    <message>
        <source>temporary credentials expired</source>
        <translation>临时凭证已过期</translation>
    </message>
    <message>
        <source>the multipart upload is gone</source>
        <translation>分片上传已不存在</translation>
    </message>
    <message>
        <source>the object does not exist</source>
        <translation>对象不存在</translation>
    </message>
    <message>
        <source>%1 Tried %2 times.</source>
        <translation>%1已尝试 %2 次。</translation>
    </message>
    <message>
        <source>%1 Tried 1 time.</source>
        <translation>%1已尝试 1 次。</translation>
    </message>
    <message>
        <source>%1 `ossdesk resume` tries it again.</source>
        <translation>%1用 `ossdesk resume` 可再次尝试。</translation>
    </message>
    <message>
        <source>%1 (trying again in %2 s)</source>
        <translation>%1（%2 秒后重试）</translation>
    </message>
    <message>
        <source>the credentials expired: give new ones and the upload goes on from where it stopped</source>
        <translation>凭证已过期：提供新的凭证后，上传将从停下的地方继续</translation>
    </message>
    <message>
        <source>%1 is gone: it was moved or deleted before it could be uploaded</source>
        <translation>%1 已不存在：它在上传前被移动或删除了</translation>
    </message>
    <message>
        <source>%1 is gone; its unfinished upload was aborted on the server</source>
        <translation>%1 已不存在；其未完成的上传已在服务器上取消</translation>
    </message>
    <message>
        <source>%1 changed while it was being uploaded, so nothing was published; upload it again once it is no longer being written to</source>
        <translation>%1 在上传过程中被修改，因此没有生成对象；请在它不再被写入后重新上传</translation>
    </message>
    <message>
        <source>%1 can no longer be read: permission denied</source>
        <translation>%1 已无法读取：权限被拒绝</translation>
    </message>
    <message>
        <source>cannot read the file: %1</source>
        <translation>无法读取文件：%1</translation>
    </message>
    <message>
        <source>%1 keeps changing while it is uploaded; the object %2 may not match it: upload it again when it is not being written to</source>
        <translation>%1 在上传过程中不断变化；对象 %2 可能与它不一致：请在它不再被写入时重新上传</translation>
    </message>
    <message>
        <source>%1 was deleted or moved while it was being uploaded; the object %2 holds the file as it was read before that</source>
        <translation>%1 在上传过程中被删除或移动；对象 %2 保存的是此前读取到的文件内容</translation>
    </message>
    <message>
        <source>the CRC64 OSS reports for %1 (%2) does not match the file's (%3); the object must not be trusted: upload it again</source>
        <translation>OSS 报告的 %1 的 CRC64（%2）与文件的（%3）不一致；该对象不可信：请重新上传</translation>
    </message>
    <message>
        <source>OSS keeps losing parts of %1; try again later</source>
        <translation>OSS 一再丢失 %1 的分片；请稍后再试</translation>
    </message>
    <message>
        <source>OSS keeps losing the upload of %1 (%2); try again later</source>
        <translation>OSS 一再丢失 %1 的上传（%2）；请稍后再试</translation>
    </message>
    <message>
        <source>%1: %2, so it starts over</source>
        <translation>%1：%2，因此从头开始上传</translation>
    </message>
    <message>
        <source>%1 is %2, not a regular file, and is not uploaded</source>
        <translation>%1 是%2，不是普通文件，不会上传</translation>
    </message>
    <message>
        <source>a folder</source>
        <translation>文件夹</translation>
    </message>
    <message>
        <source>a device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>a pipe (FIFO)</source>
        <translation>管道（FIFO）</translation>
    </message>
    <message>
        <source>a socket</source>
        <translation>套接字</translation>
    </message>
    <message>
        <source>a special file</source>
        <translation>特殊文件</translation>
    </message>
    <message>
        <source>the file on this computer</source>
        <translation>本机上的文件</translation>
    </message>
    <message>
        <source>the upload list on this computer</source>
        <translation>本机上的上传列表</translation>
    </message>
</context>
</TS>
