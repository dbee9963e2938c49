<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en_US">
<context>
    <name>DropFlow</name>
    <message numerus="yes">
        <source>%n file(s) would go to a name in the bucket that another file already goes to.</source>
        <translation>
            <numerusform>%n file would go to a name in the bucket that another file already goes to.</numerusform>
            <numerusform>%n files would go to a name in the bucket that another file already goes to.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) of what you added already exist in the bucket.</source>
        <translation>
            <numerusform>%n file of what you added already exists in the bucket.</numerusform>
            <numerusform>%n files of what you added already exist in the bucket.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>Added %n file(s)</source>
        <translation>
            <numerusform>Added %n file</numerusform>
            <numerusform>Added %n files</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n item(s) skipped</source>
        <translation>
            <numerusform>%n item skipped</numerusform>
            <numerusform>%n items skipped</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n item(s) were not added to the queue.</source>
        <translation>
            <numerusform>%n item was not added to the queue.</numerusform>
            <numerusform>%n items were not added to the queue.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) of it had been added before.</source>
        <translation>
            <numerusform>%n file of it had been added before.</numerusform>
            <numerusform>%n files of it had been added before.</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message numerus="yes">
        <source>%n file(s)</source>
        <translation>
            <numerusform>%n file</numerusform>
            <numerusform>%n files</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n uploading</source>
        <translation>
            <numerusform>%n uploading</numerusform>
            <numerusform>%n uploading</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n uploading (small files beside the %1 at once)</source>
        <translation>
            <numerusform>%n uploading (small files beside the %1 at once)</numerusform>
            <numerusform>%n uploading (small files beside the %1 at once)</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n paused</source>
        <translation>
            <numerusform>%n paused</numerusform>
            <numerusform>%n paused</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n failed</source>
        <translation>
            <numerusform>%n failed</numerusform>
            <numerusform>%n failed</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) are still running.</source>
        <translation>
            <numerusform>%n upload is still running.</numerusform>
            <numerusform>%n uploads are still running.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) of it had been added before.</source>
        <translation>
            <numerusform>%n file of it had been added before.</numerusform>
            <numerusform>%n files of it had been added before.</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>RowActions</name>
    <message numerus="yes">
        <source>Cancel %n upload(s)? The parts uploaded so far are discarded; a retry starts from the beginning.</source>
        <translation>
            <numerusform>Cancel %n upload? The parts uploaded so far are discarded; a retry starts from the beginning.</numerusform>
            <numerusform>Cancel %n uploads? The parts uploaded so far are discarded; a retry starts from the beginning.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n unfinished upload(s) will be cancelled and their uploaded parts discarded. Remove them?</source>
        <translation>
            <numerusform>%n unfinished upload will be cancelled and its uploaded parts discarded. Remove it?</numerusform>
            <numerusform>%n unfinished uploads will be cancelled and their uploaded parts discarded. Remove them?</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>TrayStatus</name>
    <message numerus="yes">
        <source>%1 of %n file(s) uploaded</source>
        <translation>
            <numerusform>%1 of %n file uploaded</numerusform>
            <numerusform>%1 of %n files uploaded</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n paused</source>
        <translation>
            <numerusform>%n paused</numerusform>
            <numerusform>%n paused</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) paused</source>
        <translation>
            <numerusform>%n upload paused</numerusform>
            <numerusform>%n uploads paused</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%1 of %n file(s) uploaded and verified</source>
        <translation>
            <numerusform>%1 of %n file uploaded and verified</numerusform>
            <numerusform>%1 of %n files uploaded and verified</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) uploaded and verified</source>
        <translation>
            <numerusform>%n file uploaded and verified</numerusform>
            <numerusform>%n files uploaded and verified</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n failed</source>
        <translation>
            <numerusform>%n failed</numerusform>
            <numerusform>%n failed</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) uploaded and verified.</source>
        <translation>
            <numerusform>%n file uploaded and verified.</numerusform>
            <numerusform>%n files uploaded and verified.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) failed.</source>
        <translation>
            <numerusform>%n upload failed.</numerusform>
            <numerusform>%n uploads failed.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) paused.</source>
        <translation>
            <numerusform>%n upload paused.</numerusform>
            <numerusform>%n uploads paused.</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n upload(s) failed. The first: %1</source>
        <translation>
            <numerusform>%n upload failed. The first: %1</numerusform>
            <numerusform>%n uploads failed. The first: %1</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>WatchedFolderModel</name>
    <message numerus="yes">
        <source>Uploading %n file(s)</source>
        <translation>
            <numerusform>Uploading %n file</numerusform>
            <numerusform>Uploading %n files</numerusform>
        </translation>
    </message>
</context>
</TS>
